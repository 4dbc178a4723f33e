/**
 * A registry host configuration that cannot be used: a hosts.toml that is not TOML or has a field of the
 * wrong type, a CA or client certificate that cannot be read or holds no usable PEM, an unreadable
 * host directory. `file` is the file (or directory) at fault, so the message points the operator at it.
 */
export class HostsConfigError extends Error {
  readonly code = "HostsConfigError" as const;
  /** The file or directory at fault (absolute when the configured hosts directory is). */
  readonly file: string;

  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`invalid registry host configuration ${file}: ${reason}`, options);
    this.name = "HostsConfigError";
    this.file = file;
  }
}
