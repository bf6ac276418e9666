/**
 * `kiln synth`: full-size models with the exact architecture of public checkpoints and
 * deterministic random weights, for benchmarks (nothing can be downloaded here). The configs
 * are the public ones; the tokenizer is the embedded model's bert-base-uncased vocabulary.
 * Predictions of such a model are meaningless, and every file says so.
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind, replaceDir, temporarySibling } from '../core/fs.js';
import { writeSafetensors } from '../model/safetensors.js';
import { writeModel } from '../onnx/writer.js';
import { PACKAGE_ROOT } from '../version.js';
import { type EncoderConfig, encoderConfig } from './architectures.js';
import { buildEncoderClassifier, IMPORT_OPSET, type WeightSource } from './encoder-graph.js';
import { assertReplaceable } from './import.js';

/** Public config.json facts of each preset (labels are added per run). */
export const PRESETS: Record<string, Record<string, unknown>> = {
  'distilbert-base-uncased': {
    architectures: ['DistilBertForSequenceClassification'],
    model_type: 'distilbert',
    activation: 'gelu',
    dim: 768,
    hidden_dim: 3072,
    n_heads: 12,
    n_layers: 6,
    max_position_embeddings: 512,
    vocab_size: 30522,
    pad_token_id: 0,
    sinusoidal_pos_embds: false,
    initializer_range: 0.02,
  },
  'bert-base-uncased': {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    hidden_act: 'gelu',
    hidden_size: 768,
    intermediate_size: 3072,
    num_attention_heads: 12,
    num_hidden_layers: 12,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    vocab_size: 30522,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    initializer_range: 0.02,
  },
  'roberta-base': {
    architectures: ['RobertaForSequenceClassification'],
    model_type: 'roberta',
    hidden_act: 'gelu',
    hidden_size: 768,
    intermediate_size: 3072,
    num_attention_heads: 12,
    num_hidden_layers: 12,
    max_position_embeddings: 514,
    type_vocab_size: 1,
    vocab_size: 50265,
    layer_norm_eps: 1e-5,
    pad_token_id: 1,
    initializer_range: 0.02,
  },
  // sentence-transformers/all-MiniLM-L6-v2: a head-less BertModel (its embeddings are mean-pooled outside the model).
  'all-minilm-l6': {
    architectures: ['BertModel'],
    model_type: 'bert',
    hidden_act: 'gelu',
    hidden_size: 384,
    intermediate_size: 1536,
    num_attention_heads: 12,
    num_hidden_layers: 6,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    vocab_size: 30522,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    initializer_range: 0.02,
  },
  'bert-large-uncased': {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    hidden_act: 'gelu',
    hidden_size: 1024,
    intermediate_size: 4096,
    num_attention_heads: 16,
    num_hidden_layers: 24,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    vocab_size: 30522,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    initializer_range: 0.02,
  },
};

export const SYNTHETIC_NOTE =
  'kiln synth: random weights with the architecture of a public model, for benchmarks; predictions are meaningless';

/** The embedded model's tokenizer (bert-base-uncased vocabulary), shipped with kiln. */
const TOKENIZER_DIR = join(PACKAGE_ROOT, 'models', 'sst2-distilbert-tiny');

export interface SynthOptions {
  preset: string;
  out: string;
  /** @defaultValue 0 */
  seed?: number;
  /** Number of classes. @defaultValue 2 */
  labels?: number;
  /** `safetensors` writes a checkpoint (imported by compile); `onnx` writes onnx/model.onnx. @defaultValue 'safetensors' */
  weights?: 'safetensors' | 'onnx';
  onTensor?: (written: number, total: number, name: string) => void;
}

export interface SynthResult {
  out: string;
  config: EncoderConfig;
  parameters: number;
}

/** A 32-bit hash of a string (FNV-1a), to give every tensor its own random stream. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Uniform numbers in [0, 1) for the tensor `name`: mulberry32, small, fast and the same on every platform. */
export function randomStream(name: string, seed: number): () => number {
  let state = (hash32(name) ^ Math.imul(seed + 1, 0x9e3779b9)) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Deterministic values for one tensor: LayerNorm weights 1, biases 0, the rest uniform with
 * the standard deviation of Hugging Face's initializer (`initializer_range`, 0.02).
 */
export function syntheticTensor(name: string, count: number, seed: number, std: number): Float32Array {
  const out = new Float32Array(count);
  const isNorm = /LayerNorm|layer_norm/.test(name);
  if (name.endsWith('.bias') || name.endsWith('.beta')) return out;
  if (isNorm) return out.fill(1);
  const next = randomStream(name, seed);
  const half = std * Math.sqrt(3);
  for (let i = 0; i < count; i += 1) out[i] = (next() * 2 - 1) * half;
  return out;
}

/** The canonical Hugging Face parameter names and shapes of a sequence classifier. */
export function canonicalShapes(config: EncoderConfig, vocab: number): Array<[string, number[]]> {
  const H = config.hidden;
  const I = config.intermediate;
  const C = config.labels;
  const out: Array<[string, number[]]> = [];
  const linear = (name: string, o: number, i: number): void => {
    out.push([`${name}.weight`, [o, i]], [`${name}.bias`, [o]]);
  };
  const norm = (name: string): void => {
    out.push([`${name}.weight`, [H]], [`${name}.bias`, [H]]);
  };
  if (config.family === 'distilbert') {
    out.push(
      ['distilbert.embeddings.word_embeddings.weight', [vocab, H]],
      ['distilbert.embeddings.position_embeddings.weight', [config.maxPositions, H]],
    );
    norm('distilbert.embeddings.LayerNorm');
    for (let l = 0; l < config.layers; l += 1) {
      const p = `distilbert.transformer.layer.${l}`;
      for (const n of ['q_lin', 'k_lin', 'v_lin', 'out_lin']) linear(`${p}.attention.${n}`, H, H);
      norm(`${p}.sa_layer_norm`);
      linear(`${p}.ffn.lin1`, I, H);
      linear(`${p}.ffn.lin2`, H, I);
      norm(`${p}.output_layer_norm`);
    }
    linear('pre_classifier', H, H);
    linear('classifier', C, H);
    return out;
  }
  const base = config.family === 'bert' ? 'bert' : 'roberta';
  out.push(
    [`${base}.embeddings.word_embeddings.weight`, [vocab, H]],
    [`${base}.embeddings.position_embeddings.weight`, [config.maxPositions, H]],
    [`${base}.embeddings.token_type_embeddings.weight`, [config.typeVocabSize, H]],
  );
  norm(`${base}.embeddings.LayerNorm`);
  for (let l = 0; l < config.layers; l += 1) {
    const p = `${base}.encoder.layer.${l}`;
    for (const n of ['query', 'key', 'value']) linear(`${p}.attention.self.${n}`, H, H);
    linear(`${p}.attention.output.dense`, H, H);
    norm(`${p}.attention.output.LayerNorm`);
    linear(`${p}.intermediate.dense`, I, H);
    linear(`${p}.output.dense`, H, I);
    norm(`${p}.output.LayerNorm`);
  }
  if (config.family === 'bert') {
    linear('bert.pooler.dense', H, H);
    linear('classifier', C, H);
  } else {
    linear('classifier.dense', H, H);
    linear('classifier.out_proj', C, H);
  }
  return out;
}

export async function synthesize(options: SynthOptions): Promise<SynthResult> {
  const preset = PRESETS[options.preset];
  if (!preset)
    throw new KilnError('KILN_ERR_SYNTH_UNKNOWN_PRESET', {
      preset: options.preset,
      known: Object.keys(PRESETS).join(', '),
    });
  const labels = options.labels ?? 2;
  const seed = options.seed ?? 0;
  const raw = {
    ...preset,
    id2label: Object.fromEntries(Array.from({ length: labels }, (_, i) => [String(i), `LABEL_${i}`])),
    label2id: Object.fromEntries(Array.from({ length: labels }, (_, i) => [`LABEL_${i}`, i])),
    kiln_synthetic: { preset: options.preset, seed, note: SYNTHETIC_NOTE },
  };
  const config = encoderConfig(raw, `preset ${options.preset}`);
  const vocab = preset.vocab_size as number;
  const shapes = new Map(canonicalShapes(config, vocab));
  const std = (preset.initializer_range as number | undefined) ?? 0.02;
  const generate = (name: string): Float32Array =>
    syntheticTensor(
      name,
      shapes.get(name)!.reduce((a, b) => a * b, 1),
      seed,
      std,
    );
  await assertReplaceableSynth(options.out);

  const staging = temporarySibling(options.out);
  try {
    await mkdir(join(staging, 'onnx'), { recursive: true });
    await writeFile(join(staging, 'config.json'), `${JSON.stringify(raw, null, 2)}\n`);
    await writeFile(
      join(staging, 'README.md'),
      `# ${options.preset} (synthetic)\n\n${SYNTHETIC_NOTE}.\nPreset ${options.preset}, seed ${seed}, ${labels} labels.\n`,
    );
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
      await copyFile(join(TOKENIZER_DIR, name), join(staging, name));
    let parameters = 0;
    for (const shape of shapes.values()) parameters += shape.reduce((a, b) => a * b, 1);
    if ((options.weights ?? 'safetensors') === 'safetensors') {
      await rm(join(staging, 'onnx'), { recursive: true });
      const tensors = [...shapes].map(([name, shape]) => ({
        name,
        dtype: 'F32' as const,
        shape,
        data: () => generate(name),
      }));
      await writeSafetensors(join(staging, 'model.safetensors'), tensors, {
        format: 'pt',
        kiln_synthetic: SYNTHETIC_NOTE,
      });
    } else {
      const source: WeightSource = {
        path: `preset ${options.preset}`,
        shape: (name) => shapes.get(name),
        load: async (name) => generate(name),
      };
      const built = buildEncoderClassifier(config, source);
      await writeModel(join(staging, 'onnx', 'model.onnx'), built.builder, { '': IMPORT_OPSET }, options.onTensor);
    }
    await replaceDir(staging, options.out);
    return { out: options.out, config, parameters };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Also replaces an earlier synth checkpoint (config.json + model.safetensors, no onnx/). */
async function assertReplaceableSynth(out: string): Promise<void> {
  if (
    (await pathKind(join(out, 'config.json'))) === 'file' &&
    (await pathKind(join(out, 'model.safetensors'))) === 'file'
  )
    return;
  await assertReplaceable(out);
}
