/**
 * `kiln package`: an artifact as the model.tar.gz SageMaker downloads and extracts into
 * /opt/ml/model, so the tar's root holds manifest.json and the artifact's files with no folder
 * prefix. The reverse, `unpackPackage`, lets every command that takes an ARTIFACT take the
 * tar.gz: it is extracted once into the cache, keyed on its SHA-256.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cacheRoot } from '../compiler/cache.js';
import { KilnError } from '../core/errors.js';
import { pathKind, temporarySibling } from '../core/fs.js';
import { sha256File } from '../core/hash.js';
import { isArtifactDir, MANIFEST_FILE, readArtifact } from '../model/artifact.js';

/** `tar` on first use: every command that takes an ARTIFACT imports this module, few of them pack or unpack. */
const loadTar = (): Promise<typeof import('tar')> => import('tar');

/** The name SageMaker's own tooling gives a model package. */
export const DEFAULT_PACKAGE_FILE = 'model.tar.gz';

export function isPackagePath(path: string): boolean {
  return /\.(tar\.gz|tgz)$/i.test(path);
}

export interface PackageOptions {
  /** The artifact folder to package. */
  artifactDir: string;
  /** The tar.gz to write; replaced if it exists. */
  out: string;
}

export interface PackageResult {
  path: string;
  /** Files at the tar's root, manifest.json first. */
  files: string[];
  bytes: number;
  sha256: string;
}

/** Verifies the artifact (every file's SHA-256), then writes the tar.gz atomically (temporary file, then rename). */
export async function packageArtifact(options: PackageOptions): Promise<PackageResult> {
  const { dir, manifest } = await readArtifact(options.artifactDir, { verify: true });
  const out = resolve(options.out);
  if ((await pathKind(out)) === 'dir') throw new KilnError('KILN_ERR_OUTPUT_EXISTS', { path: options.out });
  // Only the files the manifest vouches for: a stray file in the folder is not part of the artifact.
  const files = [MANIFEST_FILE, ...Object.keys(manifest.files).sort()];
  const temporary = temporarySibling(out);
  try {
    // portable: no uid, gid or user names of the machine that packaged it.
    const tar = await loadTar();
    await tar.create({ gzip: true, file: temporary, cwd: dir, portable: true }, files);
    await rename(temporary, out);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  return { path: out, files, bytes: (await stat(out)).size, sha256: await sha256File(out) };
}

/**
 * Extracts a package into `$KILN_CACHE_DIR/packages/<sha256>/` (once: a later call finds it) and
 * returns that folder. The entry appears by one rename of a complete folder, so a killed or
 * concurrent unpack never leaves a half-entry that a later run would trust.
 */
export async function unpackPackage(path: string): Promise<string> {
  const sha256 = await sha256File(path);
  const packagesDir = join(cacheRoot(), 'packages');
  const target = join(packagesDir, sha256);
  if (await isArtifactDir(target)) return target;
  try {
    await mkdir(packagesDir, { recursive: true });
  } catch (err) {
    throw new KilnError('KILN_ERR_CACHE_IO', { path: packagesDir, reason: (err as Error).message }, { cause: err });
  }
  const staging = temporarySibling(target);
  try {
    await mkdir(staging);
    const tar = await loadTar();
    const skipped: string[] = [];
    try {
      // List first: tar's extract rejects on a truncated gzip while its file writes are still
      // open, so the folder could not be removed cleanly; the listing writes nothing.
      await tar.list({ file: path, strict: true });
      await tar.extract({
        file: path,
        cwd: staging,
        strict: true,
        // Plain files and folders only: a link could point outside the cache.
        filter: (entryPath, entry) => {
          const keep = 'type' in entry && (entry.type === 'File' || entry.type === 'Directory');
          if (!keep) skipped.push(entryPath);
          return keep;
        },
      });
    } catch (err) {
      throw new KilnError(
        'KILN_ERR_PACKAGE_INVALID',
        { path, problem: `it cannot be extracted (${(err as Error).message})` },
        { cause: err },
      );
    }
    if (!(await isArtifactDir(staging))) {
      const problem = `its root has no ${MANIFEST_FILE}${skipped.length ? ` (links skipped: ${skipped.slice(0, 3).join(', ')})` : ''}; a package holds the artifact's files at its root, with no folder prefix`;
      throw new KilnError('KILN_ERR_PACKAGE_INVALID', { path, problem });
    }
    try {
      await rename(staging, target);
    } catch (err) {
      // Another process unpacked the same package first: its entry is as good as ours.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isArtifactDir(target))) throw err;
    }
  } finally {
    await rm(staging, { recursive: true, force: true, maxRetries: 3 });
  }
  return target;
}
