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
import { ARCH_MODULES } from './arch/index.js';
import { type EncoderConfig, encoderConfig } from './architectures.js';
import { buildEncoderClassifier, IMPORT_OPSET, type WeightSource } from './encoder-graph.js';
import { assertReplaceable } from './import.js';

/** Public config.json facts of each preset (labels are added per run), from each family's module. */
export const PRESETS: Record<string, Record<string, unknown>> = Object.fromEntries(
  ARCH_MODULES.flatMap((m) => Object.entries(m.presets)),
);

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
  // ModernBERT names its norms norm, attn_norm, mlp_norm, final_norm.
  const isNorm = /LayerNorm|layer_norm|(^|\.|_)norm\.weight$/.test(name);
  if (name.endsWith('.bias') || name.endsWith('.beta')) return out;
  if (isNorm) return out.fill(1);
  const next = randomStream(name, seed);
  const half = std * Math.sqrt(3);
  for (let i = 0; i < count; i += 1) out[i] = (next() * 2 - 1) * half;
  return out;
}

/** The canonical Hugging Face parameter names and shapes of the model `config` describes, from its family's module. */
export function canonicalShapes(config: EncoderConfig, vocab: number): Array<[string, number[]]> {
  return config.arch.shapes(vocab);
}

export async function synthesize(options: SynthOptions): Promise<SynthResult> {
  const preset = presetNamed(PRESETS, options.preset);
  const model = { preset: options.preset, seed: options.seed ?? 0, labels: options.labels ?? 2 };
  const raw = syntheticConfig(preset, model);
  const config = encoderConfig(raw, `preset ${options.preset}`);
  const vocab = preset.vocab_size as number;
  const shapes = new Map(canonicalShapes(config, vocab));
  const std = (preset.initializer_range as number | undefined) ?? 0.02;
  const generate = (name: string): Float32Array =>
    syntheticTensor(
      name,
      shapes.get(name)!.reduce((a, b) => a * b, 1),
      model.seed,
      std,
    );
  await assertReplaceableSynth(options.out);

  let parameters = 0;
  for (const shape of shapes.values()) parameters += shape.reduce((a, b) => a * b, 1);
  await writeSyntheticFolder(options.out, model, raw, async (staging) => {
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
      await copyFile(join(TOKENIZER_DIR, name), join(staging, name));
    if ((options.weights ?? 'safetensors') === 'safetensors') {
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
      await mkdir(join(staging, 'onnx'));
      await writeModel(join(staging, 'onnx', 'model.onnx'), built.builder, { '': IMPORT_OPSET }, options.onTensor);
    }
  });
  return { out: options.out, config, parameters };
}

/** A preset by name, or the coded error that lists the known ones. */
export function presetNamed<P>(presets: Record<string, P>, name: string): P {
  const preset = presets[name];
  if (!preset)
    throw new KilnError('KILN_ERR_SYNTH_UNKNOWN_PRESET', { preset: name, known: Object.keys(presets).join(', ') });
  return preset;
}

/** Which synthetic model a folder holds: its preset, random seed and number of classes. */
export interface SyntheticModel {
  preset: string;
  seed: number;
  labels: number;
}

/** config.json of a synthetic model: the preset's public facts, generic class names, and the mark that its weights are random. */
export function syntheticConfig(facts: Record<string, unknown>, model: SyntheticModel): Record<string, unknown> {
  const { preset, seed, labels } = model;
  return {
    ...facts,
    id2label: Object.fromEntries(Array.from({ length: labels }, (_, i) => [String(i), `LABEL_${i}`])),
    label2id: Object.fromEntries(Array.from({ length: labels }, (_, i) => [`LABEL_${i}`, i])),
    kiln_synthetic: { preset, seed, note: SYNTHETIC_NOTE },
  };
}

/**
 * Writes a synthetic model folder at `out` through a staging sibling, swapped in when complete:
 * config.json and a README that says the weights are random, then what `fill` adds.
 */
export async function writeSyntheticFolder(
  out: string,
  model: SyntheticModel,
  config: Record<string, unknown>,
  fill: (staging: string) => Promise<void>,
): Promise<void> {
  const { preset, seed, labels } = model;
  const staging = temporarySibling(out);
  try {
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await writeFile(
      join(staging, 'README.md'),
      `# ${preset} (synthetic)\n\n${SYNTHETIC_NOTE}.\nPreset ${preset}, seed ${seed}, ${labels} labels.\n`,
    );
    await fill(staging);
    await replaceDir(staging, out);
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
