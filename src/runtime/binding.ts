/**
 * The only file that imports onnxruntime-node. The rest of kiln sees `RuntimeSession` and plain
 * typed arrays; a device is a name here (`cpu`, `webgpu`, `cuda`) and an execution provider there.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { KilnError } from '../core/errors.js';
import type { FloatTensor, InputTensor } from '../core/tensor.js';
import { encodeModel, onnx } from '../onnx/proto.js';

export const RUNTIME_VERSION: string = ort.env.versions.node ?? ort.env.versions.common;
// ONNX Runtime's process-wide logger prints a provider that fails to load (CUDA without its
// libraries, as `--device auto` probes it) in red on stderr; kiln reports it as a coded error.
ort.env.logLevel = 'fatal';

/**
 * Where a session runs. `webgpu` is built into onnxruntime-node (Dawn over Vulkan on Linux);
 * `cuda` needs the provider libraries onnxruntime-node's install script downloads (see
 * {@link CUDA_INSTALL_COMMAND}).
 */
export const DEVICES = ['cpu', 'webgpu', 'cuda'] as const;
export type Backend = (typeof DEVICES)[number];
/** What `--device` takes: a device, or `auto` (the best one that answers, see {@link resolveDevice}). */
export type DeviceChoice = Backend | 'auto';
export const DEVICE_CHOICES: readonly DeviceChoice[] = [...DEVICES, 'auto'];

/** True for the devices that are a GPU (one session per device, fp16, no int8). */
export function isGpu(device: Backend): boolean {
  return device !== 'cpu';
}

/**
 * How onnxruntime-node's CUDA provider is installed: its package's install script, run by hand,
 * because package.json's `allowScripts` denies it during `npm ci` (and npm refuses
 * `--allow-scripts` in a project install).
 */
export const CUDA_INSTALL_COMMAND =
  'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js';
/** What ONNX Runtime 1.30's CUDA 12 build needs on the machine (onnxruntime.ai, CUDA Execution Provider, Requirements). */
export const CUDA_REQUIREMENTS = 'CUDA 12.x, cuDNN 9.x, an NVIDIA driver 525 or later';

/**
 * How a session loads the graph compile stored for `device`: a CPU artifact's graph is already
 * optimized for its CPU (`disabled`), a GPU artifact's is portable and optimized at load for the
 * provider (`all`).
 */
export function storedGraphOptimization(device: Backend): 'all' | 'disabled' {
  return device === 'cpu' ? 'disabled' : 'all';
}

export interface SessionOptions {
  backend: Backend;
  /**
   * `all` applies every graph optimization for this device (a CPU compile; a GPU artifact at
   * load); `basic` only the provider-independent ones (a GPU compile stores that graph);
   * `disabled` loads an already optimized graph as it is (a CPU artifact at run and serve).
   */
  optimization: 'all' | 'basic' | 'disabled';
  /** Where ONNX Runtime writes the optimized graph; compile only. */
  optimizedModelPath?: string;
  /** Intra-op threads; 0 lets ONNX Runtime use every core. @defaultValue 0 */
  intraOpThreads?: number;
  /**
   * Whether idle intra-op threads spin waiting for work (ONNX Runtime's
   * `session.intra_op.allow_spinning`); false puts them to sleep, so a session that is used now
   * and then leaves its cores to others in between. @defaultValue true
   */
  spinning?: boolean;
  /** A folder ONNX Runtime writes its profile into (per-node timings and providers; see {@link nodePlacement}). */
  profileDir?: string;
}

export interface RuntimeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Token ids are int tensors; images and other float inputs are Float32Array tensors (`type` 'float32' optional). */
  run(feeds: Record<string, InputTensor | FloatTensor>): Promise<Record<string, FloatTensor>>;
  release(): Promise<void>;
}

function executionProviders(backend: Backend): ort.InferenceSession.ExecutionProviderConfig[] {
  // No 'cpu' after the GPU provider: ONNX Runtime still places on the CPU the nodes the GPU
  // provider has no kernel for (the operator report counts them), but a device that does not
  // answer fails the load instead of running everything on the CPU.
  return [backend];
}

export async function createSession(modelPath: string, options: SessionOptions): Promise<RuntimeSession> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelPath, {
      executionProviders: executionProviders(options.backend),
      graphOptimizationLevel: options.optimization,
      ...(options.optimizedModelPath ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
      ...(options.profileDir ? { enableProfiling: true, profileFilePrefix: join(options.profileDir, 'profile') } : {}),
      intraOpNumThreads: options.intraOpThreads ?? 0,
      ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      // Level 4 = fatal only. Errors reach kiln as exceptions and become coded errors; the warning
      // that an 'all'-optimized graph is specific to this machine is in the manifest's target.
      logSeverityLevel: 4,
    });
  } catch (err) {
    throw (
      deviceError(options.backend, err) ??
      new KilnError('KILN_ERR_RUNTIME_LOAD', { path: modelPath, reason: (err as Error).message }, { cause: err })
    );
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        ortFeeds[name] =
          t.data instanceof Float32Array
            ? new ort.Tensor('float32', t.data, t.dims)
            : new ort.Tensor((t as InputTensor).type as 'int64', t.data as BigInt64Array, t.dims);
      }
      let results: ort.InferenceSession.OnnxValueMapType;
      try {
        results = await session.run(ortFeeds);
      } catch (err) {
        throw new KilnError('KILN_ERR_RUNTIME_RUN', { reason: (err as Error).message }, { cause: err });
      }
      const out: Record<string, FloatTensor> = {};
      for (const [name, value] of Object.entries(results)) {
        const tensor = value as ort.Tensor;
        out[name] = {
          data: tensor.data instanceof Float32Array ? tensor.data : Float32Array.from(tensor.data as ArrayLike<number>),
          dims: tensor.dims,
        };
      }
      return out;
    },
    release: () => session.release(),
  };
}

/**
 * The coded error for a device that is not there: WebGPU without an adapter (no Vulkan driver
 * Dawn accepts), CUDA without its provider libraries, CUDA/cuDNN or a driver. Null when the
 * failure is something else (a graph the provider refuses).
 */
function deviceError(backend: Backend, err: unknown): KilnError | null {
  const reason = (err as Error).message ?? String(err);
  if (backend === 'webgpu' && /adapter|vkCreateInstance|Vulkan|dawn/i.test(reason)) {
    return new KilnError('KILN_ERR_DEVICE_WEBGPU_UNAVAILABLE', { reason: firstLine(reason) }, { cause: err });
  }
  if (
    backend === 'cuda' &&
    /shared library|providers_cuda|providers_shared|libcu|cudnn|CUDA driver|CUDA failure|no CUDA-capable/i.test(reason)
  ) {
    return new KilnError(
      'KILN_ERR_DEVICE_CUDA_UNAVAILABLE',
      { reason: firstLine(reason), install: CUDA_INSTALL_COMMAND, requirements: CUDA_REQUIREMENTS },
      { cause: err },
    );
  }
  return null;
}

const firstLine = (s: string): string =>
  s
    .split('\n')[0]!
    .replace(/^\/onnxruntime_src\/\S+ /, '')
    .trim();

/** A one-node graph (Y = X + X) every provider can run: what a device probe loads. */
let probeModel: Uint8Array | null = null;
function probeBytes(): Uint8Array {
  const value = (name: string) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 4 }] } } },
  });
  probeModel ??= encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'kiln-device-probe',
      node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'], name: 'add' }],
      input: [value('x')],
      output: [value('y')],
    },
  });
  return probeModel;
}

/** Null when `device` answers (a session loads and runs), else the coded error saying why and how to fix it. */
export async function probeDevice(device: Backend): Promise<KilnError | null> {
  try {
    const session = await ort.InferenceSession.create(probeBytes(), {
      executionProviders: executionProviders(device),
      logSeverityLevel: 4,
    });
    try {
      const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [4]) });
      const y = out.y?.data as Float32Array | undefined;
      if (y?.[3] !== 8) throw new Error(`the probe graph answered ${y ? Array.from(y) : 'nothing'}, not [2, 4, 6, 8]`);
    } finally {
      await session.release();
    }
    return null;
  } catch (err) {
    return (
      deviceError(device, err) ??
      new KilnError('KILN_ERR_RUNTIME_LOAD', { path: `(${device} probe)`, reason: (err as Error).message })
    );
  }
}

/** The order `auto` tries devices in: a GPU's own stack first, then the portable GPU path, then the CPU. */
export const AUTO_ORDER: readonly Backend[] = ['cuda', 'webgpu', 'cpu'];

/**
 * The device a choice names: `auto` is the first of {@link AUTO_ORDER} that answers (with why
 * each earlier one did not, for the caller to say); any other choice is checked and fails with
 * its coded error when it does not answer.
 */
export async function resolveDevice(
  choice: DeviceChoice,
): Promise<{ device: Backend; skipped: { device: Backend; reason: string }[] }> {
  if (choice !== 'auto') {
    if (choice !== 'cpu') {
      const error = await probeDevice(choice);
      if (error) throw error;
    }
    return { device: choice, skipped: [] };
  }
  const skipped: { device: Backend; reason: string }[] = [];
  for (const device of AUTO_ORDER) {
    const error = device === 'cpu' ? null : await probeDevice(device);
    if (!error) return { device, skipped };
    skipped.push({ device, reason: error.message });
  }
  return { device: 'cpu', skipped };
}

/**
 * Where each node of a session ran: provider (`cpu`, `webgpu`, `cuda`) → its nodes, named
 * `OpType:name`, with whether any output is floating point (data, not shape arithmetic).
 */
export type NodePlacement = Record<string, { node: string; floatOutput: boolean }[]>;

/**
 * Loads `modelPath` on `device` with profiling on, runs `feeds` once, and reads the profile's
 * node events: each names the node, its operator and the provider that ran it. Memcpy nodes
 * (ONNX Runtime's own transfers between host and device) are left out.
 */
export async function nodePlacement(
  modelPath: string,
  options: Omit<SessionOptions, 'profileDir' | 'optimizedModelPath'>,
  feeds: Record<string, InputTensor | FloatTensor>,
): Promise<NodePlacement> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-profile-'));
  try {
    const session = await createSession(modelPath, { ...options, profileDir: dir });
    try {
      await session.run(feeds);
    } finally {
      await session.release();
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    const placement: Record<string, Map<string, boolean>> = {};
    for (const file of files) {
      const events = JSON.parse(await readFile(join(dir, file), 'utf8')) as {
        cat?: string;
        name?: string;
        args?: { op_name?: string; provider?: string; output_type_shape?: Record<string, unknown>[] };
      }[];
      for (const e of events) {
        if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || !e.args?.provider || !e.args.op_name) continue;
        if (e.args.op_name.startsWith('Memcpy')) continue;
        const provider = e.args.provider.replace(/ExecutionProvider$/, '').toLowerCase();
        const floatOutput = (e.args.output_type_shape ?? []).some((o) =>
          Object.keys(o).some((type) => /float|double/.test(type)),
        );
        placement[provider] ??= new Map();
        placement[provider].set(`${e.args.op_name}:${e.name.slice(0, -'_kernel_time'.length)}`, floatOutput);
      }
    }
    return Object.fromEntries(
      Object.entries(placement).map(([p, nodes]) => [
        p,
        [...nodes].sort(([a], [b]) => a.localeCompare(b)).map(([node, floatOutput]) => ({ node, floatOutput })),
      ]),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
