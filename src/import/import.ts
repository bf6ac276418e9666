/**
 * `kiln import`: a Hugging Face checkpoint folder (config.json, safetensors weights, tokenizer)
 * → an HF-layout folder with onnx/model.onnx that `kiln compile` accepts. No Python.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind, replaceDir, temporarySibling } from '../core/fs.js';
import { Checkpoint } from '../model/safetensors.js';
import { readJson } from '../model/source.js';
import { writeModel } from '../onnx/writer.js';
import { type EncoderConfig, encoderConfig } from './architectures.js';
import { buildEncoderClassifier, IMPORT_OPSET, type WeightSource } from './encoder-graph.js';

/** Files copied beside the graph when present. */
const COMPANION_FILES = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'merges.txt',
  'vocab.json',
];

export interface ImportOptions {
  /** The checkpoint folder. */
  dir: string;
  /** The folder to write (replaced if it exists and was written by kiln import before). */
  out: string;
  /** Build the encoder without its classification head (output last_hidden_state), for embeddings. @defaultValue false */
  headless?: boolean;
  /** Called after each tensor is written. */
  onTensor?: (written: number, total: number, name: string) => void;
}

export interface ImportResult {
  out: string;
  config: EncoderConfig;
  parameters: number;
  tensors: number;
  checkpointBytes: number;
}

export async function importCheckpoint(options: ImportOptions): Promise<ImportResult> {
  const configPath = join(options.dir, 'config.json');
  if ((await pathKind(options.dir)) === 'missing')
    throw new KilnError('KILN_ERR_SOURCE_NOT_FOUND', { path: options.dir });
  if ((await pathKind(configPath)) !== 'file') {
    throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
      path: options.dir,
      file: 'config.json',
      purpose: 'the architecture and its sizes',
    });
  }
  const config = encoderConfig((await readJson(configPath)) as Record<string, unknown>, configPath, {
    headless: options.headless,
  });
  await assertReplaceable(options.out);
  const checkpoint = await Checkpoint.open(options.dir);
  try {
    const source: WeightSource = {
      path: options.dir,
      shape: (name) => checkpoint.entry(name)?.shape,
      load: (name) => checkpoint.read(name, { architecture: config.architecture }),
    };
    // Building checks every tensor's presence and shape before a byte is written.
    const built = buildEncoderClassifier(config, source);
    const staging = temporarySibling(options.out);
    try {
      await mkdir(join(staging, 'onnx'), { recursive: true });
      await writeModel(join(staging, 'onnx', 'model.onnx'), built.builder, { '': IMPORT_OPSET }, options.onTensor);
      for (const name of COMPANION_FILES) {
        if ((await pathKind(join(options.dir, name))) === 'file')
          await copyFile(join(options.dir, name), join(staging, name));
      }
      await replaceDir(staging, options.out);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    return {
      out: options.out,
      config,
      parameters: built.parameters,
      tensors: built.builder.lazyWeights.length,
      checkpointBytes: checkpoint.totalBytes(),
    };
  } finally {
    await checkpoint.close();
  }
}

/** An existing output is replaced only when it is an earlier import (a model folder), never user data. */
export async function assertReplaceable(out: string): Promise<void> {
  const kind = await pathKind(out);
  if (kind === 'missing') return;
  if (
    kind === 'dir' &&
    (await pathKind(join(out, 'onnx', 'model.onnx'))) === 'file' &&
    (await pathKind(join(out, 'config.json'))) === 'file'
  )
    return;
  throw new KilnError('KILN_ERR_OUTPUT_EXISTS', { path: out });
}
