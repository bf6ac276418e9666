/**
 * The memory check of a CUDA session: an estimate of what the session needs on the GPU against
 * what the GPU has free, before anything is loaded. ONNX Runtime's Node API reports no device
 * memory, so the GPU's figures come from `nvidia-smi` (installed with the NVIDIA driver); where
 * it is absent or answers nothing, there is no check. WebGPU has no check: neither ONNX Runtime
 * nor WebGPU reports an adapter's memory (its limits cap the size of one buffer, not the total).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KilnError } from '../core/errors.js';
import type { Manifest } from '../model/artifact.js';

const run = promisify(execFile);
const MIB = 2 ** 20;

/**
 * What the CUDA runtime holds on the GPU besides the model: the context, cuBLAS and cuDNN
 * handles and their workspaces. A round figure (a CUDA context alone is a few hundred MiB on
 * current drivers), not a measurement: no GPU was at hand to measure one.
 */
export const CUDA_RUNTIME_BYTES = 512 * MIB;

/**
 * An image model's activations per image, as a multiple of its input tensor: ResNet-50's
 * largest activations ([64, 112, 112] and [256, 56, 56]) are 5.3× its [3, 224, 224] input and a
 * residual block holds about three at once; ViT-B/16's MLP ([197, 3072]) is 4× its input.
 */
export const IMAGE_ACTIVATION_FACTOR = 16;

/** Only the share of free memory a session may plan to fill: the arena grows in steps. */
export const DEVICE_MEMORY_HEADROOM = 0.9;

/** The manifest facts the estimate reads. */
export interface DeviceMemoryFacts {
  name: string;
  model: Pick<Manifest['model'], 'file' | 'encoder'>;
  files: Manifest['files'];
  image?: { height: number; width: number };
  limits: Pick<Manifest['limits'], 'maxLength'>;
  precision?: Manifest['precision'];
}

/** A GPU's memory as nvidia-smi reports it. */
export interface DeviceMemory {
  /** The GPU queried: an index or a UUID, as nvidia-smi's `--id` takes it. */
  gpu: string;
  totalBytes: number;
  usedBytes: number;
}

/** What a session is estimated to need on the device, and what the estimate is made of. */
export interface DeviceMemoryEstimate {
  /** The stored graph's size: its weights at the artifact's precision (fp16 halves the MatMuls'). */
  weightsBytes: number;
  /** Activations at `batch` × `length` (fp32): see {@link estimateDeviceMemory}. */
  activationBytes: number;
  runtimeBytes: number;
  totalBytes: number;
  /** Bytes the activations grow by per row of a batch. */
  activationBytesPerRow: number;
  batch: number;
  /** The largest bucket (tokens per row); 1 for image models. */
  length: number;
}

/**
 * The GPU ONNX Runtime's CUDA provider runs on: kiln leaves its `device_id` at 0, the first GPU
 * CUDA_VISIBLE_DEVICES lets the process see (every GPU when unset). nvidia-smi ignores that
 * variable, so its first entry (an index or a UUID) is what nvidia-smi is asked about. Indices
 * agree when CUDA_DEVICE_ORDER=PCI_BUS_ID or the GPUs are alike (CUDA's default order puts the
 * fastest first; nvidia-smi's is the PCI bus order).
 */
export function cudaGpu(env: NodeJS.ProcessEnv = process.env): string {
  const first = env.CUDA_VISIBLE_DEVICES?.split(',')[0]?.trim();
  return first ? first : '0';
}

/**
 * The memory of the GPU `gpu` from `nvidia-smi` on `env`'s PATH; null when nvidia-smi is not
 * there, fails (no driver) or answers something else: then there is nothing to check against.
 */
export async function cudaMemory(gpu: string, env: NodeJS.ProcessEnv = process.env): Promise<DeviceMemory | null> {
  let stdout: string;
  try {
    ({ stdout } = await run(
      'nvidia-smi',
      ['--query-gpu=memory.total,memory.used', '--format=csv,noheader,nounits', `--id=${gpu}`],
      { env, timeout: 10_000 },
    ));
  } catch {
    return null;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/m.exec(stdout);
  if (!match) return null;
  return { gpu, totalBytes: Number(match[1]) * MIB, usedBytes: Number(match[2]) * MIB };
}

/**
 * The session's needs at `batch` rows of the largest bucket, fp32 activations (fp16 artifacts
 * keep LayerNorm, Softmax and the adds in fp32):
 * - weights: the stored graph's file size;
 * - a text encoder (hidden h, intermediate i, heads a, length L): per row L × (4h + i) floats of
 *   hidden states and the feed-forward layer, plus 2 × a × L² of attention scores (the figure the
 *   CPU's analytic estimate uses, compiler/memory.ts);
 * - an image model: {@link IMAGE_ACTIVATION_FACTOR} × its input tensor per image;
 * - a text model whose config named no encoder sizes: weights and runtime only;
 * - plus {@link CUDA_RUNTIME_BYTES}.
 */
export function estimateDeviceMemory(manifest: DeviceMemoryFacts, batch: number): DeviceMemoryEstimate {
  const weightsBytes = manifest.files[manifest.model.file]?.bytes ?? 0;
  let length = manifest.limits.maxLength;
  let floatsPerRow = 0;
  if (manifest.image) {
    length = 1;
    floatsPerRow = IMAGE_ACTIVATION_FACTOR * 3 * manifest.image.height * manifest.image.width;
  } else if (manifest.model.encoder) {
    floatsPerRow = encoderActivationFloats({ batch: 1, length, ...manifest.model.encoder });
  }
  const activationBytesPerRow = 4 * floatsPerRow;
  const activationBytes = batch * activationBytesPerRow;
  return {
    weightsBytes,
    activationBytes,
    runtimeBytes: CUDA_RUNTIME_BYTES,
    totalBytes: weightsBytes + activationBytes + CUDA_RUNTIME_BYTES,
    activationBytesPerRow,
    batch,
    length,
  };
}

/** Floats a transformer encoder's largest activations hold at (batch, length): hidden states, FFN, attention scores. */
export function encoderActivationFloats(shape: {
  batch: number;
  length: number;
  hidden: number;
  intermediate: number;
  heads: number;
}): number {
  const tokens = shape.batch * shape.length;
  return tokens * (4 * shape.hidden + shape.intermediate) + 2 * shape.batch * shape.heads * shape.length * shape.length;
}

const mib = (bytes: number): string => `${Math.round(bytes / MIB)} MiB`;

/**
 * Refuses a session whose estimate does not fit in {@link DEVICE_MEMORY_HEADROOM} of the GPU's
 * free memory, naming both figures and what would fit.
 */
export function checkDeviceMemory(
  estimate: DeviceMemoryEstimate,
  memory: DeviceMemory,
  context: { model: string; device: string; precision: string },
): void {
  const free = Math.max(0, memory.totalBytes - memory.usedBytes);
  const usable = free * DEVICE_MEMORY_HEADROOM;
  if (estimate.totalBytes <= usable) return;
  // Weights and the runtime are there at any batch: when they alone do not fit, a smaller batch
  // or length cannot help.
  const fixedBytes = estimate.weightsBytes + estimate.runtimeBytes;
  const room = usable - fixedBytes;
  const fits =
    room > 0 && estimate.activationBytesPerRow > 0
      ? Math.min(estimate.batch - 1, Math.floor(room / estimate.activationBytesPerRow))
      : 0;
  const fixes = [
    fits >= 1 ? `run or serve with --max-batch ${fits} (the largest that fits)` : null,
    room > 0 && estimate.length > 1 ? `compile with a smaller --max-length (now ${estimate.length})` : null,
    context.precision === 'fp32' ? 'compile with --precision fp16 (half the MatMul weights)' : null,
    'run on another GPU with more free memory (CUDA_VISIBLE_DEVICES=<index>)',
    `free GPU ${memory.gpu}'s memory held by other processes (nvidia-smi lists them)`,
  ].filter(Boolean);
  throw new KilnError('KILN_ERR_DEVICE_MEMORY', {
    model: context.model,
    device: `${context.device} (GPU ${memory.gpu})`,
    needed: `${mib(estimate.totalBytes)} (weights ${mib(estimate.weightsBytes)} at ${context.precision}, activations ${mib(estimate.activationBytes)} for batch ${estimate.batch} × ${estimate.length}, CUDA runtime ${mib(estimate.runtimeBytes)})`,
    available: `${mib(free)} free of ${mib(memory.totalBytes)} (nvidia-smi)`,
    fix: fixes.join(', or '),
  });
}

/**
 * The check a session on `device` runs before it loads: CUDA only, and only where nvidia-smi
 * answers. `batch` is the largest batch the scheduler will send.
 */
export async function checkDeviceFits(
  manifest: DeviceMemoryFacts,
  device: string,
  batch: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (device !== 'cuda') return;
  const memory = await cudaMemory(cudaGpu(env), env);
  if (!memory) return;
  checkDeviceMemory(estimateDeviceMemory(manifest, batch), memory, {
    model: manifest.name,
    device,
    precision: manifest.precision ?? 'fp32',
  });
}
