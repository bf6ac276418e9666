/**
 * What compile reads from the source before any work: the task (config.json's architectures,
 * else the graph), an image model's labels and preprocessing, and whether an embedder's
 * checkpoint must be imported without its classifier head. The source graph is decoded once
 * and shared by these checks and the build ({@link GraphReader}).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { KilnError } from '../core/errors.js';
import type { Task } from '../model/artifact.js';
import {
  completePreprocessing,
  type ImageOverrides,
  type ImagePreprocessing,
  preprocessingFromConfig,
} from '../model/image.js';
import { checkpointFiles, imageInput, type ModelSource, parseConfig, readJson } from '../model/source.js';
import { describeTensor, graphInputs, graphOutputs } from '../onnx/graph.js';
import { decodeModel, type ModelProto } from '../onnx/proto.js';
import { findHiddenOutput } from './pooling.js';

/**
 * The task when config.json did not decide it: a graph with one float input of rank 4 is an
 * image classifier, one that outputs token states an embedding model, anything else a text
 * classifier (checked against its labels later).
 */
export async function resolveTask(fromConfig: Task | null, source: ModelSource, graphs: GraphReader): Promise<Task> {
  if (fromConfig) return fromConfig;
  if (source.onnxPath === null) return 'text-classification';
  const model = await graphs.read(source.onnxPath);
  if (imageInput(graphInputs(model.graph ?? {}))) return 'image-classification';
  return findHiddenOutput(model) ? 'feature-extraction' : 'text-classification';
}

/** An image model's class names: --labels, else config.json's id2label (required then). */
export function imageLabels(
  flag: string[] | undefined,
  rawConfig: unknown,
  configPath: string,
  hasConfig: boolean,
): string[] {
  if (flag && flag.length > 0) return flag;
  if (hasConfig) return parseConfig(rawConfig, configPath).labels;
  throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
    flag: '--labels',
    rule: 'given for an ONNX file without config.json: the class names in logit order, comma-separated (e.g. --labels 0,180)',
    value: '',
  });
}

/**
 * The preprocessing of an image model: flags over preprocessor_config.json over defaults; the
 * tensor size from the flags, else the graph's fixed height and width, else the config's.
 * Checks the graph takes one float [batch, 3, H, W] input of that size.
 */
export async function resolveImage(
  source: ModelSource,
  overrides: ImageOverrides,
  graphs: GraphReader,
): Promise<ImagePreprocessing> {
  if (source.onnxPath === null) {
    throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
      path: source.given,
      file: 'onnx/model.onnx or model.onnx',
      purpose: 'an image model (kiln imports text checkpoints only; export the model to ONNX)',
    });
  }
  const model = await graphs.read(source.onnxPath);
  const inputs = graphInputs(model.graph ?? {});
  const fail = (problem: string): never => {
    throw new KilnError('KILN_ERR_MODEL_IMAGE_INPUTS', {
      path: source.given,
      found: inputs.map(describeTensor).join(', ') || 'none',
      problem,
    });
  };
  const input = imageInput(inputs) ?? fail('it does not take exactly one float input of rank 4');
  const [, channels, graphHeight, graphWidth] = input.shape!;
  if (typeof channels === 'number' && channels !== 3) fail(`"${input.name}" has ${channels} channels, not 3 (RGB)`);
  const preprocessorPath = source.extraFiles.find((f) => basename(f) === 'preprocessor_config.json');
  const fromConfig = preprocessorPath
    ? preprocessingFromConfig(await readJson(preprocessorPath), preprocessorPath)
    : {};
  const fixed = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
  const height =
    overrides.height ??
    fixed(graphHeight) ??
    fromConfig.height ??
    fail(`"${input.name}" leaves its height open and neither --image-size nor preprocessor_config.json gives it`);
  const width =
    overrides.width ??
    fixed(graphWidth) ??
    fromConfig.width ??
    fail(`"${input.name}" leaves its width open and neither --image-size nor preprocessor_config.json gives it`);
  if ((fixed(graphHeight) ?? height) !== height || (fixed(graphWidth) ?? width) !== width) {
    fail(
      `the graph fixes "${input.name}" at ${graphHeight} × ${graphWidth} while ${overrides.height ? '--image-size' : 'preprocessor_config.json'} asks for ${height} × ${width}`,
    );
  }
  const parts: Partial<ImagePreprocessing> = { ...fromConfig };
  for (const key of ['mean', 'std', 'channels', 'resize'] as const)
    if (overrides[key] !== undefined) Object.assign(parts, { [key]: overrides[key] });
  // A graph ending in Softmax returns scores already; softmax over them again would flatten them.
  const last = (model.graph?.node ?? []).find((n) =>
    n.output?.includes(graphOutputs(model.graph ?? {})[0]?.name ?? ''),
  );
  return completePreprocessing(
    input.name,
    height,
    width,
    parts,
    last?.opType === 'Softmax' ? 'probabilities' : 'logits',
  );
}

/** An ONNX folder whose graph has no token-state output but whose checkpoint is beside it. */
export async function needsHeadlessImport(source: ModelSource, graphs: GraphReader): Promise<boolean> {
  const model = await graphs.read(source.onnxPath!);
  if (findHiddenOutput(model)) return false;
  return source.kind === 'hf-folder' && (await checkpointFiles(source.path)).length > 0;
}

/** Decodes an ONNX file once and keeps only the latest: compile reads the source graph from several steps. */
export class GraphReader {
  private last: { path: string; model: ModelProto } | null = null;

  async read(path: string): Promise<ModelProto> {
    if (this.last?.path !== path) this.last = { path, model: decodeModel(await readFile(path), path) };
    return this.last.model;
  }
}
