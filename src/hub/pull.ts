/**
 * A Hub model → a local snapshot folder, the way Python's `snapshot_download` lays it out, with
 * only the files kiln needs. Requests, cheapest first:
 *
 * - a commit sha whose listing (`trees/<sha>.json`) and files are cached: none at all;
 * - a branch or tag: one revision request for its commit, then as above;
 * - otherwise the tree listing (through `@huggingface/hub`'s `listFiles`, which follows the
 *   pagination) and one download per missing file.
 *
 * Offline (HF_HUB_OFFLINE=1, --offline) nothing is requested; when the Hub cannot be reached, the
 * snapshot the branch last pointed to is used with a warning, as Python does. Downloads run
 * under the repository's lock; blobs are verified before any snapshot link is made, so a
 * snapshot never shows a file that is not whole, and refs move only to complete snapshots.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { warnOnce } from '../core/log.js';
import {
  blobName,
  blobPath,
  describeCached,
  insideDir,
  type ListingEntry,
  linkIntoSnapshot,
  readRef,
  readTreeCache,
  snapshotDir,
  snapshotFileId,
  snapshotHas,
  storageDir,
  touchSnapshot,
  unsafePathProblem,
  writeRef,
  writeTreeCache,
} from './cache-layout.js';
import { HubClient, HubUnreachableError, type RequestContext } from './client.js';
import { downloadBlob } from './download.js';
import { withLock } from './lock.js';
import { type HubModelRef, isCommitSha, parseBareSource, parsePrefixedSource, repoFolderName } from './model-id.js';
import { type DownloadProgress, downloadProgress } from './progress.js';
import { SAFETENSORS_INDEX, type SelectContext, selectFiles, shardsOf, type WeightsChoice } from './select-files.js';
import { type HubOverrides, type HubSettings, hubSettings } from './settings.js';

export interface PullOptions extends HubOverrides {
  /** Which weights to take when the repo has both. @defaultValue ONNX when present, else safetensors */
  weights?: WeightsChoice;
  /** No progress on stderr (`--json`). @defaultValue false */
  quiet?: boolean;
  /** Where HF_* variables are read. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Replaces the stderr progress display. */
  progress?: DownloadProgress;
}

export interface SnapshotFile {
  /** Path in the repository (and under the snapshot folder). */
  path: string;
  size: number;
  /** The blob it links to; null when the snapshot holds a plain file. */
  blob: string | null;
}

export interface PulledSnapshot {
  repo: string;
  revision: string;
  commit: string;
  endpoint: string;
  /** `<cache>/models--ORG--NAME/snapshots/<commit>`. */
  dir: string;
  files: SnapshotFile[];
  /** Files and bytes fetched over the network this time (0 when everything was cached). */
  downloaded: { files: number; bytes: number };
  /** `hub`: the Hub was asked; `cache`: no request; `stale-cache`: the Hub could not be reached. */
  from: 'hub' | 'cache' | 'stale-cache';
}

/** The Hub model a SOURCE names: `hf:…`, or a bare ORG/NAME[@REV] that is not a local path; else null. */
export async function hubModelFor(source: string): Promise<HubModelRef | null> {
  const prefixed = parsePrefixedSource(source);
  if (prefixed) return prefixed;
  if ((await pathKind(source)) !== 'missing') return null;
  return parseBareSource(source);
}

/** Syntax only (no disk check): whether `source` would be taken as a Hub model if no such path exists. */
export function mayBeHubModel(source: string): boolean {
  return source.startsWith('hf:') || parseBareSource(source) !== null;
}

interface Pull {
  ref: HubModelRef;
  settings: HubSettings;
  client: HubClient;
  storage: string;
  options: PullOptions;
  progress: DownloadProgress;
}

export async function pullModel(ref: HubModelRef, options: PullOptions = {}): Promise<PulledSnapshot> {
  const settings = await hubSettings(options, options.env ?? process.env);
  const pull: Pull = {
    ref,
    settings,
    client: new HubClient(settings),
    storage: storageDir(settings.cacheDir, ref.repo),
    options,
    progress: options.progress ?? downloadProgress(ref.repo, { quiet: options.quiet === true }),
  };
  if (!ref.prefixed)
    process.stderr.write(
      `kiln: ${JSON.stringify(ref.given)} is not a local path; using the Hugging Face Hub model ${ref.repo} (revision ${ref.revision}) from ${settings.endpoint}\n`,
    );
  if (settings.offline) return fromCacheOnly(pull, null);
  let commit = isCommitSha(ref.revision) ? ref.revision : null;
  if (!commit) {
    try {
      commit = await resolveRevision(pull);
    } catch (err) {
      if (!(err instanceof HubUnreachableError)) throw err;
      return fromCacheOnly(pull, err.message);
    }
  }
  try {
    return await fetchSnapshot(pull, commit);
  } catch (err) {
    if (!(err instanceof HubUnreachableError)) throw err;
    throw new KilnError(
      'KILN_ERR_HUB_UNREACHABLE',
      { endpoint: settings.endpoint, reason: err.message, cached: await describeCached(settings.cacheDir, ref.repo) },
      { cause: err },
    );
  }
}

function context(pull: Pull, revision = pull.ref.revision): RequestContext {
  return {
    repo: pull.ref.repo,
    revision,
    notFoundHint: pull.ref.prefixed ? '' : ` (and ${JSON.stringify(pull.ref.given)} is not a local path either)`,
  };
}

async function resolveRevision(pull: Pull): Promise<string> {
  const { repo, revision } = pull.ref;
  const path = `api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const body = (await pull.client.json(path, context(pull))) as { sha?: unknown } | null;
  const sha = body?.sha;
  if (typeof sha !== 'string' || !isCommitSha(sha))
    throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
      url: pull.client.url(path),
      problem: 'it has no "sha" field holding a 40-character commit sha',
    });
  return sha;
}

/** The files kiln needs at `commit`, when the cached listing and every file are there; else null. */
async function cachedSelection(pull: Pull, commit: string, snapshot: string): Promise<ListingEntry[] | null> {
  const listing = await readTreeCache(pull.storage, commit);
  if (!listing) return null;
  const ctx: SelectContext = { repo: pull.ref.repo, commit };
  const selection = selectFiles(listing, pull.options.weights, ctx);
  const files = [...selection.files];
  for (const f of files) if (!(await snapshotHas(snapshot, f.path))) return null;
  if (selection.index) {
    const shards = shardsOf(await readIndex(join(snapshot, SAFETENSORS_INDEX)), listing, ctx);
    for (const s of shards) if (!(await snapshotHas(snapshot, s.path))) return null;
    files.push(...shards);
  }
  return files;
}

async function readIndex(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
}

function describe(files: readonly ListingEntry[]): SnapshotFile[] {
  return files.map((f) => ({ path: f.path, size: f.size, blob: blobName(f) }));
}

async function fetchSnapshot(pull: Pull, commit: string): Promise<PulledSnapshot> {
  const { ref, storage, settings } = pull;
  const snapshot = snapshotDir(storage, commit);
  const requested = !isCommitSha(ref.revision);
  const result = (
    files: ListingEntry[],
    downloaded: { files: number; bytes: number },
    listed: boolean,
  ): PulledSnapshot => ({
    repo: ref.repo,
    revision: ref.revision,
    commit,
    endpoint: settings.endpoint,
    dir: snapshot,
    files: describe(files),
    downloaded,
    from: requested || listed || downloaded.files > 0 ? 'hub' : 'cache',
  });
  const cached = await cachedSelection(pull, commit, snapshot);
  if (cached) {
    await writeRef(storage, ref.revision, commit).catch(() => undefined);
    await touchSnapshot(snapshot);
    return result(cached, { files: 0, bytes: 0 }, false);
  }
  const lock = join(settings.cacheDir, '.locks', repoFolderName(ref.repo), 'kiln.lock');
  return withLock(
    lock,
    async () => {
      const ctx: SelectContext = { repo: ref.repo, commit };
      let listing = await readTreeCache(storage, commit);
      const listed = listing === null;
      if (!listing) {
        listing = await listRepo(pull, commit);
        await writeTreeCache(storage, commit, listing).catch(cacheIoError(storage));
      }
      const selection = selectFiles(listing, pull.options.weights, ctx);
      const wanted = [...selection.files];
      const downloaded = { files: 0, bytes: 0 };
      for (const entry of wanted) await ensureBlob(pull, commit, snapshot, entry, downloaded);
      if (selection.index) {
        const index = blobPath(storage, blobName(selection.index), 'the listing');
        const linked = join(snapshot, SAFETENSORS_INDEX);
        const shards = shardsOf(await readIndex((await pathKind(index)) === 'file' ? index : linked), listing, ctx);
        for (const shard of shards) await ensureBlob(pull, commit, snapshot, shard, downloaded);
        wanted.push(...shards);
      }
      // Every blob is whole and verified: only now does the snapshot show the files.
      for (const entry of wanted) {
        if (await snapshotHas(snapshot, entry.path)) continue;
        await linkIntoSnapshot(
          snapshot,
          entry.path,
          blobPath(storage, blobName(entry), 'the listing'),
          'the listing',
        ).catch(cacheIoError(snapshot));
      }
      await writeRef(storage, ref.revision, commit).catch(cacheIoError(storage));
      await touchSnapshot(snapshot);
      return result(wanted, downloaded, listed);
    },
    {
      onWait: () => {
        if (!pull.options.quiet)
          process.stderr.write(`kiln: another process is downloading ${ref.repo}; waiting for it to finish\n`);
      },
    },
  );
}

function cacheIoError(path: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof KilnError) throw err;
    throw new KilnError('KILN_ERR_HUB_CACHE_IO', { path, reason: (err as Error).message }, { cause: err });
  };
}

async function ensureBlob(
  pull: Pull,
  commit: string,
  snapshot: string,
  entry: ListingEntry,
  downloaded: { files: number; bytes: number },
): Promise<void> {
  if (await snapshotHas(snapshot, entry.path)) return;
  const blob = blobPath(pull.storage, blobName(entry), 'the listing');
  if ((await pathKind(blob)) === 'file') return;
  const encoded = entry.path.split('/').map(encodeURIComponent).join('/');
  const bytes = await downloadBlob(
    pull.client,
    {
      repo: pull.ref.repo,
      commit,
      file: entry.path,
      url: pull.client.url(`${pull.ref.repo}/resolve/${commit}/${encoded}`),
      blob,
      size: entry.size,
      sha256: entry.lfs?.sha256 ?? null,
    },
    pull.progress,
  );
  downloaded.files += 1;
  downloaded.bytes += bytes;
}

/** The commit's full recursive listing, through `@huggingface/hub`'s paginated `listFiles`. */
async function listRepo(pull: Pull, commit: string): Promise<Map<string, ListingEntry>> {
  const { listFiles } = await import('@huggingface/hub');
  const { client, settings } = pull;
  let failed: Response | null = null;
  // The library keeps only the status of a failed answer; the Hub's X-Error-Code is read here.
  const fetchForLibrary = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await client.fetch(input, {
      ...init,
      signal: AbortSignal.timeout(Math.max(60_000, settings.metadataTimeoutMs)),
    });
    if (!response.ok) failed = response.clone();
    return response;
  };
  const url = client.url(`api/models/${pull.ref.repo}/tree/${commit}`);
  const entries = new Map<string, ListingEntry>();
  try {
    for await (const item of listFiles({
      repo: { type: 'model', name: pull.ref.repo },
      revision: commit,
      recursive: true,
      hubUrl: settings.endpoint,
      fetch: fetchForLibrary as typeof fetch,
    })) {
      if (item.type !== 'file') continue;
      const problem = unsafePathProblem(item.path);
      if (problem)
        throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
          url,
          problem: `it lists ${JSON.stringify(item.path)}, ${problem}`,
        });
      const lfs =
        item.lfs && typeof item.lfs.oid === 'string'
          ? { sha256: item.lfs.oid.toLowerCase(), size: typeof item.lfs.size === 'number' ? item.lfs.size : item.size }
          : null;
      if (typeof item.oid !== 'string' || typeof item.size !== 'number')
        throw new KilnError('KILN_ERR_HUB_BAD_RESPONSE', {
          url,
          problem: `its entry for ${JSON.stringify(item.path)} lacks "oid" or "size"`,
        });
      entries.set(item.path, {
        path: item.path,
        size: lfs ? lfs.size : item.size,
        blobId: item.oid,
        lfs,
        xetHash: typeof item.xetHash === 'string' ? item.xetHash : null,
      });
    }
  } catch (err) {
    if (err instanceof KilnError || err instanceof HubUnreachableError) throw err;
    const answer = failed as Response | null;
    if (answer) throw await client.failure(answer, context(pull, commit));
    throw client.wrap(err, url);
  }
  return entries;
}

/** Offline, or the Hub unreachable (`reason`): the cached snapshot of the revision, or a coded error. */
async function fromCacheOnly(pull: Pull, reason: string | null): Promise<PulledSnapshot> {
  const { ref, storage, settings } = pull;
  const commit = isCommitSha(ref.revision) ? ref.revision : await readRef(storage, ref.revision);
  const fail = async (detail: string): Promise<KilnError> => {
    const cached = `${await describeCached(settings.cacheDir, ref.repo)}${detail}`;
    return reason === null
      ? new KilnError('KILN_ERR_HUB_NOT_CACHED', {
          repo: ref.repo,
          revision: ref.revision,
          cache: settings.cacheDir,
          cached,
        })
      : new KilnError('KILN_ERR_HUB_UNREACHABLE', { endpoint: settings.endpoint, reason, cached });
  };
  if (!commit) throw await fail('');
  const snapshot = snapshotDir(storage, commit);
  if ((await pathKind(snapshot)) !== 'dir') throw await fail('');
  const listing = await readTreeCache(storage, commit);
  let files: SnapshotFile[];
  if (listing) {
    const selected = await cachedSelection(pull, commit, snapshot);
    if (!selected) throw await fail(`; snapshot ${commit} lacks files kiln needs`);
    files = describe(selected);
  } else {
    // Downloaded by a Python version that keeps no listing: use the folder as it is.
    files = await snapshotFiles(snapshot);
  }
  if (reason !== null)
    warnOnce(
      `hub-unreachable-${ref.repo}`,
      `cannot reach the Hub at ${settings.endpoint} (${reason}); using the cached snapshot ${commit} of ${ref.repo}@${ref.revision} (set HF_HUB_OFFLINE=1 to skip the check)`,
    );
  await touchSnapshot(snapshot);
  return {
    repo: ref.repo,
    revision: ref.revision,
    commit,
    endpoint: settings.endpoint,
    dir: snapshot,
    files,
    downloaded: { files: 0, bytes: 0 },
    from: reason === null ? 'cache' : 'stale-cache',
  };
}

async function snapshotFiles(snapshot: string, prefix = ''): Promise<SnapshotFile[]> {
  const out: SnapshotFile[] = [];
  const dir = prefix ? insideDir(snapshot, prefix, snapshot) : snapshot;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await snapshotFiles(snapshot, rel)));
    else {
      const s = await stat(full).catch(() => null);
      if (s?.isFile()) out.push({ path: rel, size: s.size, blob: await snapshotFileId(full) });
    }
  }
  return out;
}
