/**
 * The task registry: every task module, in the order routes and errors list them. Adding a task
 * is adding its folder and one line to {@link TASK_MODULES} (docs/architecture.md, "Adding a task").
 */
import { KilnError } from '../core/errors.js';
import { type Manifest, readArtifact, TASKS, type Task } from '../model/artifact.js';
import type { ModelProto } from '../onnx/proto.js';
import type { ModelOptions } from '../runtime/task-model.js';
import { featureExtraction } from './feature-extraction/index.js';
import type { TextEmbedder } from './feature-extraction/model.js';
import { imageClassification } from './image-classification/index.js';
import type { ImageClassifier } from './image-classification/model.js';
import { questionAnswering } from './question-answering/index.js';
import type { QuestionAnswerer } from './question-answering/model.js';
import type { AnyTaskModel, TaskModule } from './task.js';
import { textClassification } from './text-classification/index.js';
import type { TextClassifier } from './text-classification/model.js';
import { textRanking } from './text-ranking/index.js';
import type { TextRanker } from './text-ranking/model.js';
import { tokenClassification } from './token-classification/index.js';
import type { TokenClassifier } from './token-classification/model.js';
import { zeroShotClassification } from './zero-shot-classification/index.js';
import type { ZeroShotClassifier } from './zero-shot-classification/model.js';

export const TASK_MODULES: readonly TaskModule[] = [
  textClassification,
  featureExtraction,
  imageClassification,
  textRanking,
  tokenClassification,
  zeroShotClassification,
  questionAnswering,
] as unknown as readonly TaskModule[];

/** Every loaded model, one runtime class per task; narrow with `model.task`. */
export type LoadedModel =
  | TextClassifier
  | TextEmbedder
  | ImageClassifier
  | TextRanker
  | TokenClassifier
  | ZeroShotClassifier
  | QuestionAnswerer;

/** Fails to compile when a task the artifact format names (TASKS) has no module here. */
export const EVERY_TASK_HAS_A_MODULE: [Exclude<Task, LoadedModel['task']>] extends [never] ? true : never = true;

const BY_NAME = new Map<string, TaskModule>(TASK_MODULES.map((m) => [m.name, m]));

/** The module of `task`, or undefined for a name this kiln does not run. */
export function findTaskModule(task: string): TaskModule | undefined {
  return BY_NAME.get(task);
}

/** The module that runs `model` (its hooks typed for the model's class). */
export function taskOf<M extends AnyTaskModel>(model: M): TaskModule<M> {
  return BY_NAME.get(model.task) as unknown as TaskModule<M>;
}

/** The module of a manifest's task; KILN_ERR_ARTIFACT_INVALID for a task this kiln does not run. */
export function taskOfManifest(dir: string, manifest: Manifest): TaskModule {
  const module = BY_NAME.get(manifest.task);
  if (!module) {
    throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
      path: dir,
      problem: `its task ${JSON.stringify(manifest.task)} is not one this kiln runs (${TASKS.join(', ')}); recompile it with this kiln`,
    });
  }
  return module;
}

/** The modules `keep` accepts, in registry order. */
export function tasksWhere(keep: (module: TaskModule) => boolean): Task[] {
  return [...BY_NAME.values()].filter(keep).map((m) => m.name);
}

/** The task config.json's `architectures[0]` and labels say, or null when no module claims them. */
export function taskFromArchitecture(config: {
  architectures: readonly string[];
  labels: readonly string[];
}): Task | null {
  const name = config.architectures[0];
  if (!name) return null;
  return [...BY_NAME.values()].find((m) => m.detect.architecture?.(name, config.labels))?.name ?? null;
}

/** The task a graph says (null: no graph to read): the first module claiming it, else the fallback. */
export function taskFromGraph(model: ModelProto | null): Task {
  const modules = [...BY_NAME.values()];
  const claimed = model === null ? undefined : modules.find((m) => m.detect.graph?.(model));
  return (claimed ?? modules.find((m) => m.detect.fallback)!).name;
}

/** Reads an artifact (each file's SHA-256 checked unless `verify: false`) and starts its task's runtime class. */
export async function loadModel(artifactPath: string, options: ModelOptions = {}): Promise<LoadedModel> {
  const { dir, manifest } = await readArtifact(artifactPath, { verify: options.verify !== false });
  return (await taskOfManifest(dir, manifest).open(dir, manifest, options)) as LoadedModel;
}
