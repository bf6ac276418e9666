/** Opens an artifact as the runtime class of its task: the one entry run, serve, bench and batch use. */
import { KilnError } from '../core/errors.js';
import { type Manifest, readArtifact, TASKS } from '../model/artifact.js';
import { ImageClassifier } from './image-classifier.js';
import type { ModelOptions } from './task-model.js';
import { TextClassifier } from './text-classifier.js';
import { TextEmbedder } from './text-embedder.js';

/** Every loaded model; narrow with `model.task` or `instanceof`. */
export type LoadedModel = TextClassifier | TextEmbedder | ImageClassifier;

/** The class that runs each task. */
const CLASSES: Partial<
  Record<Manifest['task'], { open(dir: string, manifest: Manifest, options: ModelOptions): Promise<LoadedModel> }>
> = {
  'text-classification': TextClassifier,
  'feature-extraction': TextEmbedder,
  'image-classification': ImageClassifier,
};

export async function loadModel(artifactPath: string, options: ModelOptions = {}): Promise<LoadedModel> {
  const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
  const taskClass = CLASSES[manifest.task];
  if (!taskClass) {
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
      path: dir,
      problem: `its task ${JSON.stringify(manifest.task)} is not one this kiln runs (${TASKS.join(', ')}); recompile it with this kiln`,
    });
  }
  return taskClass.open(dir, manifest, options);
}
