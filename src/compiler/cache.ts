/**
 * The compile cache (as the Neuron compiler keeps one): finished artifacts keyed on
 * the source's content hash, the compile options, the target CPU and the kiln and ONNX Runtime
 * versions. An entry appears by one rename of a complete folder, so a killed or concurrent
 * compile never leaves a half-entry that a later run would trust.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { dirSize, pathKind, temporarySibling } from '../core/fs.js';
import { sha256 } from '../core/hash.js';
import { MANIFEST_FILE, type Manifest, readArtifact } from '../model/artifact.js';

/** `$KILN_CACHE_DIR`, else `~/.cache/kiln`. */
export function cacheRoot(): string {
  return process.env.KILN_CACHE_DIR || join(homedir(), '.cache', 'kiln');
}

const entriesDir = (): string => join(cacheRoot(), 'artifacts');

/** Staging folders older than this are left by killed compiles and may be removed. */
const STALE_STAGING_MS = 60 * 60 * 1000;

export interface CacheKeyParts {
  sourceSha256: string;
  options: Record<string, unknown>;
  target: Record<string, unknown>;
  kilnVersion: string;
  runtimeVersion: string;
}

export function cacheKey(parts: CacheKeyParts): string {
  // Sorted keys: the same options in another order are the same entry.
  const canonical = JSON.stringify(parts, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as object).sort(([a], [b]) => a.localeCompare(b)))
      : v,
  );
  return sha256(canonical).slice(0, 32);
}

async function ensureEntriesDir(): Promise<string> {
  const dir = entriesDir();
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new KilnError('KILN_ERR_CACHE_IO', { path: dir, reason: (err as Error).message }, { cause: err });
  }
  return dir;
}

/** The entry's folder if it is complete, else null. */
export async function lookup(key: string): Promise<string | null> {
  const dir = join(entriesDir(), key);
  return (await pathKind(join(dir, MANIFEST_FILE))) === 'file' ? dir : null;
}

/** A fresh staging folder on the cache's file system, so `commit` can rename it into place. */
export async function stagingDir(key: string): Promise<string> {
  const dir = temporarySibling(join(await ensureEntriesDir(), key));
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Moves a finished staging folder into the cache; if another compile won the race, keeps theirs. */
export async function commit(staged: string, key: string): Promise<string> {
  const target = join(entriesDir(), key);
  try {
    await rename(staged, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST')
      throw new KilnError('KILN_ERR_CACHE_IO', { path: target, reason: (err as Error).message }, { cause: err });
    await rm(staged, { recursive: true, force: true });
  }
  return target;
}

export interface CacheEntry {
  key: string;
  dir: string;
  source: string;
  options: Record<string, unknown>;
  bytes: number;
  createdAt: string;
  ageMs: number;
}

export async function listEntries(): Promise<CacheEntry[]> {
  const root = entriesDir();
  if ((await pathKind(root)) !== 'dir') return [];
  const entries: CacheEntry[] = [];
  for (const item of await readdir(root, { withFileTypes: true })) {
    if (!item.isDirectory() || item.name.startsWith('.')) continue;
    const dir = join(root, item.name);
    let manifest: Manifest;
    try {
      manifest = (await readArtifact(dir, { verify: false })).manifest;
    } catch {
      continue;
    }
    const createdAt = manifest.compile.createdAt;
    entries.push({
      key: item.name,
      dir,
      source: manifest.source.path,
      options: { ...manifest.compile.options },
      bytes: await dirSize(dir),
      createdAt,
      ageMs: Date.now() - Date.parse(createdAt),
    });
  }
  return entries.sort((a, b) => a.ageMs - b.ageMs);
}

/** Removes every entry (and leftovers of killed compiles); returns what was freed. */
export async function clearCache(): Promise<{ entries: number; bytes: number }> {
  const root = entriesDir();
  if ((await pathKind(root)) !== 'dir') return { entries: 0, bytes: 0 };
  let entries = 0;
  let bytes = 0;
  for (const item of await readdir(root, { withFileTypes: true })) {
    if (!item.isDirectory()) continue;
    const dir = join(root, item.name);
    bytes += await dirSize(dir);
    if (!item.name.startsWith('.')) entries += 1;
    await rm(dir, { recursive: true, force: true });
  }
  return { entries, bytes };
}

/** Removes staging folders that killed compiles left behind. */
export async function pruneStaging(): Promise<void> {
  const root = entriesDir();
  if ((await pathKind(root)) !== 'dir') return;
  for (const item of await readdir(root, { withFileTypes: true })) {
    if (!item.name.startsWith('.kiln-tmp-')) continue;
    const dir = join(root, item.name);
    const age = Date.now() - (await stat(dir)).mtimeMs;
    if (age > STALE_STAGING_MS) await rm(dir, { recursive: true, force: true });
  }
}
