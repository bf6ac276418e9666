/**
 * Model sources: what `kiln compile` accepts. A Hugging Face-layout folder (config.json,
 * tokenizer.json, onnx/model.onnx or model.onnx), a bare .onnx file with those files beside it,
 * or a model on the Hugging Face Hub (`hf:ORG/NAME[@REV]`), which becomes its cached snapshot folder.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { hubModelFor, type PullOptions, pullModel } from '../hub/pull.js';
import { graphInputs, type TensorInfo } from '../onnx/graph.js';
import { decodeModel } from '../onnx/proto.js';

export interface ModelSource {
  /** `hf-checkpoint`: a folder with safetensors weights and no ONNX graph yet (compile imports it). */
  kind: 'hf-folder' | 'onnx-file' | 'hf-checkpoint';
  /** Absolute path of what the user passed. */
  path: string;
  /** Short name for the artifact: the folder name, or the file name without `.onnx`. */
  name: string;
  /** The graph; null for a checkpoint until it is imported. */
  onnxPath: string | null;
  /** Safetensors files (index and shards, or the single file) of a checkpoint. */
  weightFiles: string[];
  /** Null when absent; text models and checkpoints require it ({@link requireCompanion}). */
  configPath: string | null;
  /** Null when absent; text models require it. */
  tokenizerPath: string | null;
  /** Whether the user passed a folder or a bare .onnx file (decides the missing-file error). */
  from: 'folder' | 'file';
  /** The path as the user wrote it, for errors. */
  given: string;
  /** Optional companions (tokenizer config, preprocessor_config.json) copied into the artifact when present. */
  extraFiles: string[];
  /** Set for a Hub model: `path` is its snapshot folder at `commit`. */
  hub?: { repo: string; revision: string; commit: string };
}

const ONNX_CANDIDATES = ['onnx/model.onnx', 'model.onnx'];
const OPTIONAL_FILES = ['tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json'];

async function firstExisting(dir: string, names: readonly string[]): Promise<string | null> {
  for (const name of names) {
    if ((await pathKind(join(dir, name))) === 'file') return join(dir, name);
  }
  return null;
}

/**
 * Finds the files of a source; throws a coded error naming what is missing. A Hub model is
 * pulled into the Hub cache first (`options.hub` says how) and its snapshot folder is the source.
 */
export async function resolveSource(input: string, options: { hub?: PullOptions } = {}): Promise<ModelSource> {
  const model = await hubModelFor(input);
  if (!model) return resolveLocal(input, input);
  const snapshot = await pullModel(model, options.hub);
  return {
    ...(await resolveLocal(snapshot.dir, input)),
    name: model.repo.split('/').pop()!,
    hub: { repo: snapshot.repo, revision: snapshot.revision, commit: snapshot.commit },
  };
}

/** `input`: the path to read; `given`: the source as the user wrote it, for errors. */
async function resolveLocal(input: string, given: string): Promise<ModelSource> {
  const path = resolve(input);
  const kind = await pathKind(path);
  if (kind === 'missing') throw new KilnError('KILN_ERR_SOURCE_NOT_FOUND', { path: given });

  if (kind === 'dir') {
    const onnxPath = await firstExisting(path, ONNX_CANDIDATES);
    if (onnxPath)
      return {
        kind: 'hf-folder',
        path,
        name: basename(path),
        onnxPath,
        weightFiles: [],
        ...(await companions(path, given, 'folder', onnxPath)),
      };
    const weightFiles = await checkpointFiles(path);
    if (weightFiles.length === 0) {
      throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
        path: given,
        file: 'onnx/model.onnx, model.onnx, model.safetensors or model.safetensors.index.json',
        purpose: 'the model graph or its weights',
      });
    }
    return {
      kind: 'hf-checkpoint',
      path,
      name: basename(path),
      onnxPath: null,
      weightFiles,
      ...(await companions(path, given, 'folder', null)),
    };
  }

  if (kind === 'file' && extname(path).toLowerCase() === '.onnx') {
    // A graph exported to <model>/onnx/model.onnx keeps its config one folder up.
    const dir = dirname(path);
    const home =
      basename(dir) === 'onnx' && (await pathKind(join(dirname(dir), 'config.json'))) === 'file' ? dirname(dir) : dir;
    const name =
      basename(path, extname(path)) === 'model' && home !== dir ? basename(home) : basename(path, extname(path));
    return {
      kind: 'onnx-file',
      path,
      name,
      onnxPath: path,
      weightFiles: [],
      ...(await companions(home, given, 'file', path)),
    };
  }

  throw new KilnError('KILN_ERR_SOURCE_UNRECOGNIZED', { path: given });
}

/** The safetensors files of a checkpoint folder: the single file, or the index and its shards. */
export async function checkpointFiles(dir: string): Promise<string[]> {
  const single = join(dir, 'model.safetensors');
  if ((await pathKind(single)) === 'file') return [single];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if ((await pathKind(indexPath)) !== 'file') return [];
  const index = (await readJson(indexPath)) as { weight_map?: Record<string, unknown> } | null;
  const shards = new Set(Object.values(index?.weight_map ?? {}).filter((v): v is string => typeof v === 'string'));
  const files = [indexPath];
  for (const shard of [...shards].sort()) {
    const file = join(dir, shard);
    if ((await pathKind(file)) !== 'file')
      throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
        path: dir,
        file: shard,
        purpose: 'a shard of the weights listed in model.safetensors.index.json',
      });
    files.push(file);
  }
  return files;
}

async function companions(
  dir: string,
  input: string,
  from: 'folder' | 'file',
  onnxPath: string | null,
): Promise<Pick<ModelSource, 'configPath' | 'tokenizerPath' | 'extraFiles' | 'from' | 'given'>> {
  const configPath = await firstExisting(dir, ['config.json']);
  const tokenizerPath = await firstExisting(dir, ['tokenizer.json']);
  const extraFiles: string[] = [];
  for (const name of OPTIONAL_FILES) {
    const found = await firstExisting(dir, [name]);
    if (found) extraFiles.push(found);
  }
  const source = { configPath, tokenizerPath, extraFiles, from, given: input };
  // An image model needs no tokenizer, and a bare image graph no config.json (its labels can be flags).
  if (!tokenizerPath || !configPath) {
    const image =
      (configPath !== null && (await configSaysImage(configPath))) ||
      (onnxPath !== null && (await isImageGraph(onnxPath)));
    if (!image) {
      requireCompanion(source, 'config.json');
      requireCompanion(source, 'tokenizer.json');
    }
  }
  return source;
}

async function configSaysImage(path: string): Promise<boolean> {
  const raw = (await readJson(path)) as { architectures?: unknown } | null;
  const first = Array.isArray(raw?.architectures) ? raw.architectures[0] : undefined;
  return typeof first === 'string' && first.endsWith('ForImageClassification');
}

/** One float input of rank 4 ([batch, channels, height, width]): an image model. */
export function imageInput(inputs: readonly TensorInfo[]): TensorInfo | null {
  const [only] = inputs;
  return inputs.length === 1 && only!.type === 'float' && only!.shape?.length === 4 ? only! : null;
}

async function isImageGraph(onnxPath: string): Promise<boolean> {
  try {
    return imageInput(graphInputs(decodeModel(await readFile(onnxPath), onnxPath).graph ?? {})) !== null;
  } catch {
    // Not decodable: the missing-file error comes first; compile reports the graph later.
    return false;
  }
}

const PURPOSES = {
  'config.json': 'the labels (id2label) and position limit',
  'tokenizer.json': 'turning text into token ids',
} as const;

/** The companion's path; the coded missing-file error (naming the source as the user gave it) when absent. */
export function requireCompanion(
  source: Pick<ModelSource, 'configPath' | 'tokenizerPath' | 'from' | 'given'>,
  file: keyof typeof PURPOSES,
): string {
  const found = file === 'config.json' ? source.configPath : source.tokenizerPath;
  if (found) return found;
  if (source.from === 'file')
    throw new KilnError('KILN_ERR_SOURCE_NEEDS_FOLDER', { path: source.given, missing: file });
  throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', { path: source.given, file, purpose: PURPOSES[file] });
}

export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KilnError(
      'KILN_ERR_CONFIG_INVALID',
      { path, problem: `it cannot be read (${(err as Error).message})` },
      { cause: err },
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new KilnError(
      'KILN_ERR_CONFIG_INVALID',
      { path, problem: `it is not valid JSON (${(err as Error).message})` },
      { cause: err },
    );
  }
}

/** The facts compile needs from config.json. */
export interface ModelConfig {
  labels: string[];
  /** Longest sequence the position embeddings allow, or null when the config does not say. */
  maxPositions: number | null;
  modelType: string | null;
  architectures: string[];
  /** Set by `kiln synth`: the weights are random and predictions meaningless. */
  synthetic: string | null;
  /** Rows of the word embedding table, when config.json says (`vocab_size`). */
  vocabSize: number | null;
  /** Encoder sizes for the memory estimate, when config.json names them (BERT or DistilBERT field names). */
  encoderShape: { hidden: number; intermediate: number; heads: number } | null;
}

/** `labels: 'optional'` (embedding models): a config without id2label gives no labels instead of an error. */
export function parseConfig(
  raw: unknown,
  path: string,
  options: { labels?: 'required' | 'optional' } = {},
): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', { path, problem: 'it is not a JSON object' });
  }
  const config = raw as Record<string, unknown>;
  const id2label = config.id2label ?? (options.labels === 'optional' ? {} : undefined);
  if (
    options.labels === 'optional' &&
    typeof id2label === 'object' &&
    id2label !== null &&
    Object.keys(id2label).length === 0
  ) {
    return { ...parseConfig({ ...config, id2label: { 0: 'LABEL_0' } }, path), labels: [] };
  }
  if (typeof id2label !== 'object' || id2label === null || Object.keys(id2label).length === 0) {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path,
      problem:
        'it has no "id2label" map, so the class names are unknown; add {"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}',
    });
  }
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels: string[] = new Array(entries.length);
  for (const [id, label] of entries) {
    const index = /^\d+$/.test(id) ? Number(id) : NaN;
    if (
      !Number.isInteger(index) ||
      index < 0 ||
      index >= entries.length ||
      typeof label !== 'string' ||
      labels[index] !== undefined
    ) {
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path,
        problem: `"id2label" must map the ids 0..${entries.length - 1} to label names, got ${JSON.stringify(id)}: ${JSON.stringify(label)}`,
      });
    }
    labels[index] = label;
  }
  const modelType = typeof config.model_type === 'string' ? config.model_type : null;
  let maxPositions = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : null;
  // RoBERTa-family position ids start after the padding index, which costs pad_token_id + 1 slots.
  if (maxPositions !== null && (modelType === 'roberta' || modelType === 'xlm-roberta' || modelType === 'camembert')) {
    const pad = typeof config.pad_token_id === 'number' ? config.pad_token_id : 1;
    maxPositions -= pad + 1;
  }
  // MPNet does the same from a padding index fixed at 1 in its embeddings module.
  if (maxPositions !== null && modelType === 'mpnet') maxPositions -= 2;
  const architectures = Array.isArray(config.architectures)
    ? config.architectures.filter((a): a is string => typeof a === 'string')
    : [];
  const marker = config.kiln_synthetic as { note?: unknown } | undefined;
  const synthetic = marker
    ? typeof marker.note === 'string'
      ? marker.note
      : 'synthetic weights; predictions are meaningless'
    : null;
  const vocabSize =
    typeof config.vocab_size === 'number' && Number.isInteger(config.vocab_size) ? config.vocab_size : null;
  const num = (...fields: string[]): number | null => {
    for (const f of fields) if (typeof config[f] === 'number') return config[f] as number;
    return null;
  };
  const hidden = num('hidden_size', 'dim');
  const intermediate = num('intermediate_size', 'hidden_dim');
  const heads = num('num_attention_heads', 'n_heads');
  const encoderShape =
    hidden !== null && intermediate !== null && heads !== null ? { hidden, intermediate, heads } : null;
  return { labels, maxPositions, modelType, architectures, synthetic, vocabSize, encoderShape };
}
