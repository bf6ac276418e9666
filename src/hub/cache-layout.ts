/**
 * Python huggingface_hub's cache layout, so a model either tool downloaded serves the other:
 *
 *   <cache>/models--ORG--NAME/
 *     blobs/<sha256 for LFS files, git blob id otherwise>     the file contents, once each
 *     snapshots/<commit>/<path in repo>  → ../../blobs/<id>   relative symlinks, per commit
 *     refs/<branch or tag>                                     the commit it pointed to last
 *     trees/<commit>.json                                      the commit's full file listing
 *
 * `trees/` is Python's listing cache (format_version 1): with it a commit's needs are known
 * offline. Every path a server names is checked to stay inside its folder before it is used.
 */
import {
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind, temporarySibling } from '../core/fs.js';
import { isCommitSha, repoFolderName, repoFromFolderName } from './model-id.js';

/** One file of a commit, as the Hub's tree listing describes it. */
export interface ListingEntry {
  path: string;
  /** Bytes of the file itself (the LFS object's size for LFS files). */
  size: number;
  /** Git blob id (of the pointer file, for LFS files). */
  blobId: string;
  /** The LFS object's SHA-256 and size; null for files stored in git. */
  lfs: { sha256: string; size: number } | null;
  xetHash: string | null;
}

const TREE_FORMAT_VERSION = 1;
const BLOB_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** The name a file's blob has: its LFS SHA-256, else its git blob id (what Python names it by, from the ETag). */
export function blobName(entry: ListingEntry): string {
  return entry.lfs ? entry.lfs.sha256 : entry.blobId;
}

export function storageDir(cacheDir: string, repo: string): string {
  return join(cacheDir, repoFolderName(repo));
}

export function snapshotDir(storage: string, commit: string): string {
  if (!isCommitSha(commit))
    throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
      url: storage,
      problem: `${JSON.stringify(commit)} is not a commit sha`,
    });
  return join(storage, 'snapshots', commit);
}

/**
 * Why a path from the Hub is unsafe to create under a folder, or null: absolute, drive or UNC
 * paths, backslashes (a separator on Windows), `.`/`..`/empty segments and control characters
 * could all write outside the cache.
 */
export function unsafePathProblem(path: string): string | null {
  if (path.length === 0 || path.length > 1024) return 'an empty or overlong path';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\\\x00-\x1f\x7f]/.test(path)) return 'a backslash or control character in a path';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path) || isAbsolute(path)) return 'an absolute path';
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..'))
    return 'a path with an empty, "." or ".." segment';
  return null;
}

/** `base/rel` after checking `rel` (a server-given path) cannot leave `base`. */
export function insideDir(base: string, rel: string, source: string): string {
  const problem = unsafePathProblem(rel);
  const full = resolve(base, ...rel.split('/'));
  const back = relative(resolve(base), full);
  if (problem || back.startsWith('..') || isAbsolute(back))
    throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
      url: source,
      problem: `it names ${JSON.stringify(rel)}, ${problem ?? 'a path outside the cache folder'}; kiln writes no file outside the cache`,
    });
  return full;
}

export function blobPath(storage: string, blob: string, source: string): string {
  if (!BLOB_ID.test(blob))
    throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
      url: source,
      problem: `${JSON.stringify(blob)} is not a git blob id or SHA-256`,
    });
  return join(storage, 'blobs', blob);
}

function refPath(storage: string, revision: string): string {
  return insideDir(join(storage, 'refs'), revision, 'the revision');
}

/** The commit a branch or tag pointed to when it was last fetched, or null. */
export async function readRef(storage: string, revision: string): Promise<string | null> {
  try {
    const commit = (await readFile(refPath(storage, revision), 'utf8')).trim();
    return isCommitSha(commit) ? commit : null;
  } catch {
    return null;
  }
}

/** Written whole or not at all (temporary file + rename), so a reader never sees half a sha. */
export async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const path = refPath(storage, revision);
  if ((await readRef(storage, revision)) === commit) return;
  await writeAtomic(path, commit);
}

async function writeAtomic(path: string, content: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = temporarySibling(path);
  try {
    await writeFile(temp, content);
    await rename(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
}

/** The commit's full listing as Python's `trees/<commit>.json` holds it, or null. */
export async function readTreeCache(storage: string, commit: string): Promise<Map<string, ListingEntry> | null> {
  let data: { format_version?: unknown; files?: Record<string, Record<string, unknown>> };
  try {
    data = JSON.parse(await readFile(join(storage, 'trees', `${commit}.json`), 'utf8'));
  } catch {
    return null;
  }
  if (data.format_version !== TREE_FORMAT_VERSION || typeof data.files !== 'object' || data.files === null) return null;
  const entries = new Map<string, ListingEntry>();
  for (const [path, info] of Object.entries(data.files)) {
    if (typeof info.size !== 'number' || typeof info.blob_id !== 'string') return null;
    entries.set(path, {
      path,
      size: typeof info.lfs_size === 'number' ? info.lfs_size : info.size,
      blobId: info.blob_id,
      lfs:
        typeof info.lfs_sha256 === 'string'
          ? { sha256: info.lfs_sha256, size: typeof info.lfs_size === 'number' ? info.lfs_size : info.size }
          : null,
      xetHash: typeof info.xet_hash === 'string' ? info.xet_hash : null,
    });
  }
  return entries;
}

export async function writeTreeCache(
  storage: string,
  commit: string,
  entries: Map<string, ListingEntry>,
): Promise<void> {
  const files: Record<string, Record<string, unknown>> = {};
  for (const path of [...entries.keys()].sort()) {
    const e = entries.get(path)!;
    files[path] = {
      size: e.size,
      blob_id: e.blobId,
      ...(e.lfs ? { lfs_sha256: e.lfs.sha256, lfs_size: e.lfs.size } : {}),
      ...(e.xetHash ? { xet_hash: e.xetHash } : {}),
    };
  }
  await writeAtomic(
    join(storage, 'trees', `${commit}.json`),
    JSON.stringify({ format_version: TREE_FORMAT_VERSION, files }, null, 1),
  );
}

/** Points `snapshots/<commit>/<path>` at its blob with a relative symlink (a copy where links are refused). */
export async function linkIntoSnapshot(snapshot: string, path: string, blob: string, source: string): Promise<void> {
  const pointer = insideDir(snapshot, path, source);
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blob);
  try {
    if ((await readlink(pointer)) === target) return;
  } catch {
    // Absent, or a plain file: replaced below.
  }
  const temp = temporarySibling(pointer);
  try {
    await symlink(target, temp);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    await copyFile(blob, temp);
  }
  try {
    await rename(temp, pointer);
  } finally {
    await rm(temp, { force: true });
  }
}

/** Whether the snapshot has `path` as a readable file (a symlink must reach its blob). */
export async function snapshotHas(snapshot: string, path: string): Promise<boolean> {
  if (unsafePathProblem(path)) return false;
  return (await pathKind(join(snapshot, ...path.split('/')))) === 'file';
}

/**
 * A snapshot file's identity without reading it: the blob its symlink names (the listing's
 * hash, checked at download), or null for a plain file.
 */
export async function snapshotFileId(path: string): Promise<string | null> {
  try {
    if (!(await lstat(path)).isSymbolicLink()) return null;
    const name = (await readlink(path)).split(/[\\/]/).pop() ?? '';
    return BLOB_ID.test(name) ? name : null;
  } catch {
    return null;
  }
}

/** Marks a snapshot as used now (what `kiln cache ls` reports as last used). */
export async function touchSnapshot(snapshot: string): Promise<void> {
  const now = new Date();
  await utimes(snapshot, now, now).catch(() => undefined);
}

export interface CachedRevision {
  commit: string;
  /** Branches and tags whose ref names this commit. */
  refs: string[];
  dir: string;
  files: number;
  /** Bytes of the blobs this snapshot links to. */
  bytes: number;
  /** When kiln last used the snapshot or any of its blobs was last read. */
  lastUsed: Date;
}

export interface CachedRepo {
  repo: string;
  dir: string;
  revisions: CachedRevision[];
  /** Bytes of every blob the repository folder holds (shared blobs once). */
  bytes: number;
}

async function walkFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await walkFiles(join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}

async function readRefs(refsDir: string): Promise<Map<string, string[]>> {
  const byCommit = new Map<string, string[]>();
  if ((await pathKind(refsDir)) !== 'dir') return byCommit;
  for (const name of await walkFiles(refsDir)) {
    const commit = (await readFile(join(refsDir, ...name.split('/')), 'utf8').catch(() => '')).trim();
    if (!isCommitSha(commit)) continue;
    byCommit.set(commit, [...(byCommit.get(commit) ?? []), name]);
  }
  return byCommit;
}

/** The model repositories in a Hub cache, each with its snapshots; other repo types are left out. */
export async function listCachedRepos(cacheDir: string): Promise<CachedRepo[]> {
  if ((await pathKind(cacheDir)) !== 'dir') return [];
  const repos: CachedRepo[] = [];
  for (const entry of await readdir(cacheDir, { withFileTypes: true })) {
    const repo = entry.isDirectory() ? repoFromFolderName(entry.name) : null;
    if (!repo) continue;
    const dir = join(cacheDir, entry.name);
    const refs = await readRefs(join(dir, 'refs'));
    const revisions: CachedRevision[] = [];
    const snapshots = join(dir, 'snapshots');
    const blobStats = new Map<string, { size: number; atimeMs: number }>();
    if ((await pathKind(snapshots)) === 'dir') {
      for (const snap of await readdir(snapshots, { withFileTypes: true })) {
        if (!snap.isDirectory()) continue;
        const snapDir = join(snapshots, snap.name);
        let bytes = 0;
        let lastUsed = (await stat(snapDir)).mtimeMs;
        const files = await walkFiles(snapDir);
        for (const file of files) {
          const s = await stat(join(snapDir, ...file.split('/'))).catch(() => null);
          if (!s) continue;
          bytes += s.size;
          lastUsed = Math.max(lastUsed, s.atimeMs);
        }
        revisions.push({
          commit: snap.name,
          refs: (refs.get(snap.name) ?? []).sort(),
          dir: snapDir,
          files: files.length,
          bytes,
          lastUsed: new Date(lastUsed),
        });
      }
    }
    const blobs = join(dir, 'blobs');
    if ((await pathKind(blobs)) === 'dir') {
      for (const blob of await readdir(blobs)) {
        const s = await stat(join(blobs, blob)).catch(() => null);
        if (s?.isFile()) blobStats.set(blob, { size: s.size, atimeMs: s.atimeMs });
      }
    }
    revisions.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
    repos.push({ repo, dir, revisions, bytes: [...blobStats.values()].reduce((n, s) => n + s.size, 0) });
  }
  return repos.sort((a, b) => a.repo.localeCompare(b.repo));
}

/** Deletes one repository's folder (all its snapshots and blobs) and its lock folder; returns the bytes freed. */
export async function removeCachedRepo(cacheDir: string, repo: string): Promise<{ removed: boolean; bytes: number }> {
  const found = (await listCachedRepos(cacheDir)).find((r) => r.repo === repo);
  if (!found) return { removed: false, bytes: 0 };
  await rm(found.dir, { recursive: true, force: true });
  await rm(join(cacheDir, '.locks', repoFolderName(repo)), { recursive: true, force: true });
  return { removed: true, bytes: found.bytes };
}

/** `the cache has main → 0123abcd…, v1.0 → …` or `nothing is cached for ORG/NAME`: for error messages. */
export async function describeCached(cacheDir: string, repo: string): Promise<string> {
  const found = (await listCachedRepos(cacheDir).catch(() => [])).find((r) => r.repo === repo);
  if (!found || found.revisions.length === 0) return `nothing is cached for ${repo} in ${cacheDir}`;
  const list = found.revisions.map((r) => (r.refs.length > 0 ? `${r.refs.join(', ')} → ${r.commit}` : r.commit));
  return `the cache at ${cacheDir} has ${repo} at ${list.join('; ')}`;
}
