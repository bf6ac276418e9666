/**
 * Which SOURCE strings name a model on the Hugging Face Hub: `hf:ORG/NAME[@REVISION]` and
 * `hf:NAME` always; a bare `ORG/NAME[@REVISION]` only when no such local path exists (the
 * caller checks the disk). Repository names follow the Hub's rules (letters, digits, `-`, `_`,
 * `.`; no `--` or `..`; at most 96 characters a part), so a typo in a local path with a file
 * extension is not mistaken for a model id.
 */
import { KilnError } from '../core/errors.js';

export interface HubModelRef {
  /** `ORG/NAME`, or `NAME` for the Hub's old un-namespaced repositories. */
  repo: string;
  /** Branch, tag or commit sha. @defaultValue 'main' */
  revision: string;
  /** The SOURCE as the user wrote it. */
  given: string;
  /** True for `hf:…`; false for a bare `ORG/NAME` taken because no local path has that name. */
  prefixed: boolean;
}

export const HF_PREFIX = 'hf:';
const DEFAULT_REVISION = 'main';
const PART = /^[A-Za-z0-9][\w.-]{0,95}$/;
const COMMIT_SHA = /^[0-9a-f]{40}$/;
/** Names that end like files kiln reads are local paths that do not exist, not model ids. */
const FILE_ENDINGS = /\.(onnx|kiln|gz|tgz|tar|safetensors|json|bin|pt|pth|txt|tsv|csv|jsonl)$/i;

export function isCommitSha(revision: string): boolean {
  return COMMIT_SHA.test(revision);
}

/** Why `part` is not a valid Hub name part, or null when it is. */
function partProblem(part: string): string | null {
  if (!PART.test(part)) return `${JSON.stringify(part)} must be 1 to 96 letters, digits, "-", "_" or "."`;
  if (part.includes('--') || part.includes('..')) return `${JSON.stringify(part)} must not contain "--" or ".."`;
  if (part.endsWith('-') || part.endsWith('.')) return `${JSON.stringify(part)} must not end with "-" or "."`;
  return null;
}

/**
 * Why `revision` cannot be used, or null. It becomes a file under refs/ in the cache (as Python
 * writes `refs/refs/pr/1`), so it must stay a relative path without `..`.
 */
function revisionProblem(revision: string): string | null {
  if (revision.length === 0 || revision.length > 256) return 'the revision after @ must be 1 to 256 characters';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\s\\\x00-\x1f\x7f]/.test(revision))
    return 'the revision must not contain spaces, backslashes or control characters';
  if (
    revision.startsWith('/') ||
    revision.endsWith('/') ||
    revision.split('/').some((s) => s === '' || s === '.' || s === '..')
  )
    return 'the revision must be a branch, tag or commit sha (relative, no empty, "." or ".." segments)';
  return null;
}

function split(body: string): { repo: string; revision: string } {
  const at = body.indexOf('@');
  return at < 0
    ? { repo: body, revision: DEFAULT_REVISION }
    : { repo: body.slice(0, at), revision: body.slice(at + 1) };
}

/** `hf:ORG/NAME[@REV]` or `hf:NAME[@REV]`; throws KILN_ERR_HUB_INVALID_ID when malformed; null without the prefix. */
export function parsePrefixedSource(source: string): HubModelRef | null {
  if (!source.startsWith(HF_PREFIX)) return null;
  const { repo, revision } = split(source.slice(HF_PREFIX.length));
  const parts = repo.split('/');
  if (parts.length > 2 || repo === '')
    throw new KilnError('KILN_ERR_HUB_INVALID_ID', { source, problem: 'the id must be ORG/NAME or NAME' });
  for (const part of parts) {
    const problem = partProblem(part);
    if (problem) throw new KilnError('KILN_ERR_HUB_INVALID_ID', { source, problem });
  }
  const problem = revisionProblem(revision);
  if (problem) throw new KilnError('KILN_ERR_HUB_INVALID_ID', { source, problem });
  return { repo, revision, given: source, prefixed: true };
}

/** A bare `ORG/NAME[@REV]` with valid parts; the caller has already found no local path of that name. */
export function parseBareSource(source: string): HubModelRef | null {
  const { repo, revision } = split(source);
  const parts = repo.split('/');
  if (parts.length !== 2 || parts.some((p) => partProblem(p) !== null)) return null;
  if (FILE_ENDINGS.test(repo) || revisionProblem(revision) !== null) return null;
  return { repo, revision, given: source, prefixed: false };
}

/** `models--ORG--NAME`: the folder Python's huggingface_hub keeps a model repository in. */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

/** `ORG/NAME` from `models--ORG--NAME`, or null for any other folder. */
export function repoFromFolderName(folder: string): string | null {
  if (!folder.startsWith('models--')) return null;
  const repo = folder.slice('models--'.length).split('--').join('/');
  return repo.length > 0 ? repo : null;
}
