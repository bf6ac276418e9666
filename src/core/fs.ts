import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
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
