/**
 * `kiln compile`: source model → checked, optimized, self-describing artifact, through the cache.
 * The stages: plan (resolve the source, check every option against it), hash the source, look
 * the result up in the cache, else build it (build.ts) in a staging folder and publish it.
 */
import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { temporarySibling } from '../core/fs.js';
import { type Manifest, readArtifact } from '../model/artifact.js';
import { RUNTIME_VERSION } from '../runtime/binding.js';
import { KILN_VERSION } from '../version.js';
import { build } from './build.js';
import { cacheKey, commit, lookup, pruneStaging, stagingDir } from './cache.js';
import type { CompileOptions, CompileStep } from './compile-options.js';
import { compileTarget, planCompile } from './plan.js';
import { publish } from './publish.js';
import { hashSource } from './source-files.js';

export {
  type CompileOptions,
  type CompileStep,
  DEFAULT_GPU_MAX_BATCH,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_LENGTH,
  MAX_BATCH_LIMIT,
  PRECISIONS,
  type Precision,
} from './compile-options.js';

export interface CompileResult {
  artifactDir: string;
  manifest: Manifest;
  cache: 'hit' | 'miss' | 'off';
  cacheKey: string;
  durationMs: number;
}

export async function compile(options: CompileOptions): Promise<CompileResult> {
  const started = performance.now();
  const step = async <T>(name: CompileStep, work: () => Promise<T>): Promise<T> => {
    options.onStep?.(name, 'start');
    const result = await work();
    options.onStep?.(name, 'end');
    return result;
  };
  const result = (artifactDir: string, manifest: Manifest, cache: CompileResult['cache']): CompileResult => ({
    artifactDir,
    manifest,
    cache,
    cacheKey: key,
    durationMs: performance.now() - started,
  });

  const plan = await planCompile(options);
  const sourceSha256 = await step('hash', () => hashSource(plan.source));
  const key = cacheKey({
    sourceSha256,
    options: plan.keyOptions,
    target: compileTarget(),
    kilnVersion: KILN_VERSION,
    runtimeVersion: RUNTIME_VERSION,
  });
  const useCache = options.cache !== false;
  if (useCache) {
    const hit = await lookup(key);
    if (hit) {
      const artifactDir = plan.out === null ? hit : await publish(hit, plan.out, 'copy');
      return result(artifactDir, (await readArtifact(artifactDir, { verify: false })).manifest, 'hit');
    }
    await pruneStaging().catch(() => undefined);
  }

  const out = plan.out ?? resolve(`${plan.source.name}.kiln`);
  const staging = useCache ? await stagingDir(key) : temporarySibling(out);
  try {
    await mkdir(staging, { recursive: true });
    const manifest = await build(plan, { staging, sourceSha256, started, step });
    if (!useCache) return result(await publish(staging, out, 'move'), manifest, 'off');
    const entry = await commit(staging, key);
    return result(plan.out === null ? entry : await publish(entry, plan.out, 'copy'), manifest, 'miss');
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
