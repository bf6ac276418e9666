/**
 * Which device a loaded artifact runs on, and what that device changes in the layout. Kept out
 * of the scheduler: the scheduler sees replicas, whatever they run on.
 */
import { KilnError } from '../core/errors.js';
import type { Manifest } from '../model/artifact.js';
import { type Backend, type DeviceChoice, isGpu, resolveDevice, storedGraphOptimization } from './binding.js';

/** How a device was chosen, for the line that says which (`auto`) and for /stats. */
export interface DeviceDecision {
  device: Backend;
  /** How the session optimizes the stored graph at load (see {@link loadOptimization}). */
  optimization: 'all' | 'disabled';
  /** With `auto`: the devices tried first and why each did not answer. */
  skipped: { device: Backend; reason: string }[];
}

/** The device an artifact was compiled for (artifacts from before devices are CPU ones). */
export function compiledDevice(manifest: Pick<Manifest, 'compile'>): Backend {
  const recorded = manifest.compile.backend;
  return recorded === 'webgpu' || recorded === 'cuda' ? recorded : 'cpu';
}

/**
 * A CPU artifact stores the graph ONNX Runtime optimized for the CPU it was compiled on, loaded
 * as it is; a GPU artifact stores a portable (basic-level) graph that the session optimizes at
 * load for the provider it runs on.
 */
export function loadOptimization(manifest: Pick<Manifest, 'compile'>): 'all' | 'disabled' {
  return storedGraphOptimization(compiledDevice(manifest));
}

/**
 * The device `choice` names for this artifact (unset: the one it was compiled for), checked to
 * answer. A CPU artifact runs on the CPU only: its graph carries CPU-specific fusions and
 * layouts. A GPU artifact runs on either GPU device, or on the CPU (optimized at load). `auto`
 * picks the first device that answers among those the artifact can run on.
 */
export async function chooseDevice(
  path: string,
  manifest: Pick<Manifest, 'compile' | 'precision'>,
  choice: DeviceChoice | undefined,
): Promise<DeviceDecision> {
  const compiled = compiledDevice(manifest);
  const optimization = loadOptimization(manifest);
  const requested = choice ?? compiled;
  if (compiled === 'cpu') {
    if (requested === 'cpu' || requested === 'auto') return { device: 'cpu', optimization, skipped: [] };
    throw new KilnError('KILN_ERR_DEVICE_MISMATCH', {
      path,
      compiled,
      requested,
      fix: `its stored graph is optimized for this CPU (fused CPU kernels); compile the source with --device ${requested}`,
    });
  }
  if (requested === 'cpu' && manifest.precision === 'fp16') {
    throw new KilnError('KILN_ERR_DEVICE_MISMATCH', {
      path,
      compiled,
      requested,
      fix: 'its weights are fp16, which the CPU provider does not run fast; compile the source with --device cpu (fp32 or int8)',
    });
  }
  const { device, skipped } = await resolveDevice(requested);
  if (device === 'cpu' && manifest.precision === 'fp16') {
    throw new KilnError('KILN_ERR_DEVICE_MISMATCH', {
      path,
      compiled,
      requested,
      fix: `its weights are fp16 and --device auto found no GPU (${skipped.map((s) => s.reason).join('; ')})`,
    });
  }
  return { device, optimization, skipped };
}

/** What a device changes in the layout's defaults; explicit options and the tuned layout still win. */
export interface DeviceLayoutDefaults {
  /** Replicas when neither the options nor the tuned layout set them. */
  replicas: number | 'auto';
  /** Intra-op threads per replica when unset. */
  threadsPerReplica: number | null;
}

/**
 * On a GPU one session owns the device: replicas would share it (and its memory) and add no
 * compute, so there is one, and its intra-op threads only run the few nodes the provider leaves
 * on the CPU (shape arithmetic). Checked here so the scheduler never sees a device.
 */
export function deviceLayout(device: Backend, replicas: number | 'auto' | undefined): DeviceLayoutDefaults {
  if (!isGpu(device)) return { replicas: replicas ?? 'auto', threadsPerReplica: null };
  if (typeof replicas === 'number' && replicas > 1)
    throw new KilnError('KILN_ERR_DEVICE_REPLICAS', { device, replicas });
  return { replicas: 1, threadsPerReplica: 1 };
}
