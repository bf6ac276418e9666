import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function pathKind(path: string): Promise<'file' | 'dir' | 'missing' | 'other'> {
  try {
    const s = await stat(path);
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return 'missing';
    throw err;
  }
}

/** A fresh sibling path for writing `target` before an atomic rename onto it. */
export function temporarySibling(target: string): string {
  return join(dirname(target), `.kiln-tmp-${basename(target)}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Copies a folder's plain files (one level, as artifacts are); reflinks where the file system can. */
export async function copyFlatDir(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isFile()) await copyFile(join(from, entry.name), join(to, entry.name), constants.COPYFILE_FICLONE);
  }
}

/**
 * Replaces folder `target` with `staged` as atomically as POSIX allows: the old folder is moved
 * aside first, so a reader sees the old or the new folder, never a half-written one.
 */
export async function replaceDir(staged: string, target: string): Promise<void> {
  const aside = temporarySibling(target);
  let moved = false;
  try {
    await rename(target, aside);
    moved = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await rename(staged, target);
  if (moved) await rm(aside, { recursive: true, force: true });
}

export async function dirSize(path: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(join(path, entry.name))).size;
  }
  return total;
}

/** Reads and writes of big files go in pieces of this size: one read(2) or write(2) call moves at most ~2 GiB on Linux. */
export const IO_CHUNK = 64 * 1024 * 1024;

/**
 * Writes `path` through a temporary sibling renamed onto it once `produce` has written
 * everything, so a reader never sees a half-written file; on failure the temporary file is
 * removed. `write` writes all of its bytes. `sync`: flush the data to disk before the rename.
 */
export async function writeFileAtomically(
  path: string,
  produce: (write: (bytes: Uint8Array) => Promise<void>) => Promise<void>,
  options: { sync?: boolean } = {},
): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  const file = await open(temporary, 'w');
  try {
    await produce(async (bytes) => {
      for (let done = 0; done < bytes.byteLength; ) {
        const { bytesWritten } = await file.write(bytes, done, Math.min(IO_CHUNK, bytes.byteLength - done));
        done += bytesWritten;
      }
    });
    if (options.sync) await file.datasync();
    await file.close();
    await rename(temporary, path);
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw err;
  }
}
