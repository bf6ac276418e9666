/**
 * One file from `/{repo}/resolve/{commit}/{path}` into `blobs/<id>`: written to
 * `blobs/<id>.incomplete`, checked (size; SHA-256 against the LFS oid for LFS files), then
 * renamed into place, so a blob that exists is whole and verified. A cut connection resumes
 * with a Range request from what is on disk (the next run resumes too); a server that ignores
 * the Range gets a restart from byte 0. The caller holds the repository's lock.
 */
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KilnError } from '../core/errors.js';
import { sha256File } from '../core/hash.js';
import { type HubClient, HubUnreachableError } from './client.js';
import type { DownloadProgress } from './progress.js';

/** Attempts in a row that add no byte before the download is given up. */
const MAX_FRUITLESS_ATTEMPTS = 5;

export interface BlobDownload {
  repo: string;
  commit: string;
  /** Path in the repository, for messages and progress. */
  file: string;
  url: string;
  blob: string;
  size: number;
  /** Expected SHA-256 of the content (LFS files); null for files stored in git. */
  sha256: string | null;
}

async function sizeOnDisk(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** `bytes 100-199/200` → 100; null when absent or malformed. */
function rangeStart(header: string | null): number | null {
  const match = header ? /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim()) : null;
  return match ? Number(match[1]) : null;
}

class RestartFromZero extends Error {}

/** Downloads, verifies and renames into `target.blob`; returns the bytes received over the network. */
export async function downloadBlob(
  client: HubClient,
  target: BlobDownload,
  progress: DownloadProgress,
): Promise<number> {
  const incomplete = `${target.blob}.incomplete`;
  await mkdir(dirname(target.blob), { recursive: true });
  // Files kept in git are small and may come compressed; only LFS files resume.
  if (!target.sha256) await rm(incomplete, { force: true });
  let fruitless = 0;
  let received = 0;
  const started = performance.now();
  let announced = false;
  for (;;) {
    let offset = await sizeOnDisk(incomplete);
    if (offset > target.size) {
      await rm(incomplete, { force: true });
      offset = 0;
    }
    if (!announced) {
      progress.start(target.file, target.size, offset);
      announced = true;
    }
    const before = offset;
    try {
      const got = await receive(client, target, incomplete, offset, progress);
      received += got;
      break;
    } catch (err) {
      const now = await sizeOnDisk(incomplete);
      received += Math.max(0, now - before);
      if (err instanceof RestartFromZero) {
        await rm(incomplete, { force: true });
        fruitless += 1;
      } else if (err instanceof KilnError) {
        throw err;
      } else {
        fruitless = now > before ? 0 : fruitless + 1;
      }
      if (fruitless >= MAX_FRUITLESS_ATTEMPTS)
        throw new KilnError(
          'KILN_ERR_HUB_DOWNLOAD',
          {
            repo: target.repo,
            file: target.file,
            reason: `${MAX_FRUITLESS_ATTEMPTS} attempts in a row received nothing (${(err as Error).message}); ${now} of ${target.size} bytes are kept in ${incomplete}`,
          },
          { cause: err },
        );
      await delay(Math.min(2000, 100 * 2 ** fruitless));
    }
  }
  await verify(target, incomplete);
  await rename(incomplete, target.blob);
  progress.finish(target.file, target.size, performance.now() - started);
  return received;
}

/** One request: appends to `incomplete` from `offset`; throws to retry. Returns bytes written. */
async function receive(
  client: HubClient,
  target: BlobDownload,
  incomplete: string,
  offset: number,
  progress: DownloadProgress,
): Promise<number> {
  if (offset === target.size && target.size > 0) return 0;
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), client.settings.metadataTimeoutMs);
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  try {
    let response: Response;
    try {
      response = await client.fetch(target.url, { headers, signal: controller.signal });
    } catch (err) {
      throw client.wrap(err, target.url);
    }
    if (response.status === 416 && offset > 0) {
      await response.body?.cancel();
      throw new RestartFromZero('the server refused the resume range');
    }
    if (!response.ok) {
      const failure = await client.failure(response, {
        repo: target.repo,
        revision: target.commit,
        file: target.file,
      });
      throw failure;
    }
    let position = offset;
    if (offset > 0 && response.status !== 206) position = 0;
    if (response.status === 206 && rangeStart(response.headers.get('content-range')) !== offset) {
      await response.body?.cancel();
      throw new RestartFromZero('the server answered another range than asked');
    }
    const handle = await open(incomplete, position > 0 ? 'a' : 'w');
    let written = 0;
    try {
      for await (const chunk of response.body ?? []) {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(), client.settings.stallTimeoutMs);
        const bytes = chunk as Uint8Array;
        await handle.write(bytes);
        written += bytes.length;
        progress.advance(target.file, position + written);
      }
    } catch (err) {
      throw err instanceof HubUnreachableError ? err : client.wrap(err, target.url);
    } finally {
      await handle.close();
    }
    return written;
  } finally {
    clearTimeout(timer);
  }
}

async function verify(target: BlobDownload, incomplete: string): Promise<void> {
  const size = await sizeOnDisk(incomplete);
  if (size !== target.size) {
    await rm(incomplete, { force: true });
    throw new KilnError('KILN_ERR_HUB_DOWNLOAD', {
      repo: target.repo,
      file: target.file,
      reason: `the server sent ${size} bytes where the listing says ${target.size}; the partial file was discarded`,
    });
  }
  if (!target.sha256) return;
  const actual = await sha256File(incomplete);
  if (actual !== target.sha256) {
    await rm(incomplete, { force: true });
    throw new KilnError('KILN_ERR_HUB_CHECKSUM', {
      repo: target.repo,
      file: target.file,
      expected: target.sha256,
      actual,
    });
  }
}
