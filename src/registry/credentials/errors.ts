/**
 * CredentialError and redaction. Every message in this folder names the file, helper or plugin at fault and
 * never carries a secret: parser messages (JSON.parse, yaml) quote the input they choke on, so they are never
 * passed through; a helper's or plugin's stdout is never echoed.
 */

/** Where a CredentialError comes from (a missing plugin binary sets both file and plugin). */
export interface CredentialErrorOrigin {
  readonly file?: string;
  readonly helper?: string;
  readonly plugin?: string;
}

/**
 * A credential source is malformed or failed: an unreadable or malformed pull secret, docker config or
 * credential provider config, or a credential helper that is missing, hangs, or prints garbage.
 */
export class CredentialError extends Error {
  readonly code: "CredentialError" = "CredentialError";
  /** The file at fault (pull secret, config.json, CredentialProviderConfig), when there is one. */
  readonly file: string | undefined;
  /** The helper executable at fault (`docker-credential-<name>`), when there is one. */
  readonly helper: string | undefined;
  /** The provider plugin at fault, when there is one. */
  readonly plugin: string | undefined;

  constructor(origin: CredentialErrorOrigin, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CredentialError";
    this.file = origin.file;
    this.helper = origin.helper;
    this.plugin = origin.plugin;
  }
}

/** What replaces a secret in redacted text. */
export const REDACTED = "<redacted>";

/** The forms a secret takes in the text we might print: raw, JSON-escaped, URL- and form-encoded. */
function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  forms.add(JSON.stringify(secret).slice(1, -1));
  try {
    forms.add(encodeURIComponent(secret));
  } catch {
    // a lone surrogate cannot be URL-encoded; the raw form is still covered
  }
  forms.add(new URLSearchParams({ s: secret }).toString().slice(2));
  return [...forms];
}

/**
 * Replaces every occurrence of each non-empty secret in `text` (raw, JSON-escaped, URL- and form-encoded)
 * with `<redacted>`. Longer forms are replaced first, so a secret containing another is not half-revealed.
 */
export function redact(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (typeof s === "string" && s.length > 0) for (const f of secretForms(s)) forms.add(f);
  }
  if (forms.size === 0) return text;
  // One pass with the longest forms first, so a secret that contains another is not half-revealed and a
  // short secret never matches inside an earlier replacement.
  const alternatives = [...forms].sort((a, b) => b.length - a.length).map(escapeRegExp);
  return text.replace(new RegExp(alternatives.join("|"), "g"), REDACTED);
}

function escapeRegExp(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
}
