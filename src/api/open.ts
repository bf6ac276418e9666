/**
 * The library's way in: whatever a user names a model by (an artifact folder, a model source,
 * a Hub model, a kiln package) becomes an artifact folder, then a loaded model of its task.
 */
import { type CompileResult, compile } from '../compiler/compile.js';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { isPackagePath, unpackPackage } from '../deploy/package.js';
import { mayBeHubModel, type PullOptions } from '../hub/pull.js';
import { isArtifactDir } from '../model/artifact.js';
import type { DeviceChoice } from '../runtime/binding.js';
import type { ModelOptions } from '../runtime/task-model.js';
import { type LoadedModel, loadModel as openArtifact } from '../tasks/registry.js';

/** How the replicas of a loaded model run and batch. */
export type RuntimeOptions = Omit<ModelOptions, 'replicaFactory'>;

/** Called when a model was named by its source, once the source is compiled (or found in the compile cache). */
export type OnCompile = (source: string, result: CompileResult) => void;

export interface LoadModelOptions extends RuntimeOptions {
  /**
   * The model: an artifact folder, a model source (compiled through the compile cache with the
   * default compile options first; a Hub model `hf:ORG/NAME[@REV]` is pulled into the Hub cache
   * before), or a kiln package (.tar.gz, unpacked into the cache once).
   */
  model: string;
  /** Told when `model` was a source and had to be compiled; `result.cache` says whether the cache had it. */
  onCompile?: OnCompile;
  /** How a Hub model is pulled: token, offline, which weights, progress. */
  hub?: PullOptions;
}

/**
 * The artifact folder `path` names: an artifact is itself, a source is compiled through the
 * cache for `device` (a hit after the first time) and its cache entry used (a Hub model is pulled as `hub`
 * says first), a package is unpacked into the cache once and that folder used.
 */
export async function resolveArtifact(
  path: string,
  options: Pick<LoadModelOptions, 'onCompile' | 'hub'> & { device?: DeviceChoice } = {},
): Promise<string> {
  const kind = await pathKind(path);
  if (kind === 'missing' && !mayBeHubModel(path)) throw new KilnError('KILN_ERR_SOURCE_NOT_FOUND', { path });
  if (kind === 'dir' && (await isArtifactDir(path))) return path;
  if (kind === 'file' && isPackagePath(path)) return unpackPackage(path);
  const result = await compile({ source: path, out: null, hub: options.hub, device: options.device });
  options.onCompile?.(path, result);
  return result.artifactDir;
}

/**
 * Opens a model as the class of its task, with its replicas started: `classify` for text and
 * image classifiers, `embed` for embedders (narrow on `model.task`). Call `close()` when done.
 */
export async function loadModel(options: LoadModelOptions): Promise<LoadedModel> {
  const { model, onCompile, hub, ...runtime } = options;
  return openArtifact(await resolveArtifact(model, { onCompile, hub, device: runtime.device }), runtime);
}
