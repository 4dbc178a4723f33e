// check: rules, cluster policy configuration, reports, `fix` and `pin`. The public surface of the module.

export {
  type CheckConfig,
  CONFIG_FILE,
  ConfigError,
  defaultConfig,
  findConfigFile,
  globToRegExp,
  isPathIgnored,
  loadConfig,
  parseConfig,
} from "./config.ts";
export { diffLines, splitLines, unifiedDiff } from "./diff.ts";
export { applyEdits, insertPair, lineBreak, renderScalar, replaceValue, type TextEdit } from "./edit.ts";
export {
  analyse,
  type CheckOptions,
  checkImageUses,
  describeContainer,
  describeObject,
  objectKey,
  reportExitCode,
  ruleSeverity,
} from "./engine.ts";
export {
  ANNOTATION_IGNORE,
  ANNOTATION_MODE,
  ANNOTATION_REASON,
  ANNOTATION_UNTIL,
  type ExemptionSet,
  isCalendarDate,
  type ObjectExemptions,
  readExemptions,
} from "./exemptions.ts";
export { type FixChange, type FixResult, type FixSkip, fixText } from "./fix.ts";
export { type LoadedSources, type LoadOptions, loadSources, withoutIgnoredSources } from "./inputs.ts";
export {
  emptyLock,
  type LockEntry,
  LockError,
  type LockFile,
  parseLock,
  readLock,
  serializeLock,
} from "./lock.ts";
export { allowedPolicies, describeAllowed, fixPolicy } from "./modes.ts";
export {
  lockKey,
  type PinFileResult,
  type PinItem,
  type PinOptions,
  type PinResult,
  type PinStatus,
  pinTexts,
  type Resolver,
  registryResolver,
  type Verification,
  verifyPins,
} from "./pin.ts";
export {
  ANNOTATIONS_PER_LEVEL,
  escapeData,
  escapeProperty,
  type GithubOutput,
  renderGithub,
} from "./report/github.ts";
export { renderJson } from "./report/json.ts";
export { renderJunit, xmlEscape } from "./report/junit.ts";
export { artifactUri, findingPath, fingerprint } from "./report/location.ts";
export { renderSarif, SARIF_SCHEMA, type SarifOptions, sarifLog } from "./report/sarif.ts";
export { renderText, type TextOptions } from "./report/text.ts";
export { isRuleId, RULE_IDS, RULES, ruleById } from "./rules/index.ts";
export {
  type CheckReport,
  DEFAULT_MODE,
  type Evaluation,
  type Exemption,
  type Finding,
  isMode,
  MODES,
  type Mode,
  type PolicyFix,
  type Rule,
  type RuleId,
  SEVERITIES,
  type Severity,
  type SeverityOrOff,
  type Subject,
  type Summary,
  type Violation,
} from "./types.ts";
export { encodeText, writeFileAtomic } from "./write.ts";
