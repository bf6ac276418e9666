/**
 * The operator report of a GPU compile: which nodes the GPU provider ran and which ONNX Runtime
 * left on the CPU, read from a profiled test inference (each node event names its provider).
 * ONNX Runtime keeps shape arithmetic (Shape, Gather on shapes, Unsqueeze, Concat, … on int64
 * tensors) on the CPU on purpose, so only CPU nodes with a floating-point output (data, each a
 * copy between the device and the host) count as a fallback worth a warning.
 */
import type { FloatTensor, InputTensor } from '../core/tensor.js';
import type { Placement } from '../model/artifact.js';
import { type Backend, nodePlacement, storedGraphOptimization } from '../runtime/binding.js';

/** A warning when this many compute nodes (or more) run on the CPU. */
export const FALLBACK_WARN_AT = 1;

export async function placeOperators(
  modelPath: string,
  backend: Backend,
  feeds: Record<string, InputTensor | FloatTensor>,
): Promise<Placement> {
  const placement = await nodePlacement(
    modelPath,
    { backend, optimization: storedGraphOptimization(backend), intraOpThreads: 1 },
    feeds,
  );
  const onCpu = placement.cpu ?? [];
  const onDevice = Object.entries(placement)
    .filter(([provider]) => provider !== 'cpu')
    .reduce((n, [, nodes]) => n + nodes.length, 0);
  return {
    onDevice,
    onCpu: { count: onCpu.length, nodes: onCpu.map((n) => n.node) },
    computeOnCpu: onCpu.filter((n) => n.floatOutput).map((n) => n.node),
  };
}

/** The operator report in one line, and a warning when compute runs on the CPU. */
export function describePlacement(backend: string, p: Placement): { line: string; warning: string | null } {
  const line = `${p.onDevice} nodes on ${backend}, ${p.onCpu.count} on the CPU (${p.onCpu.count - p.computeOnCpu.length} shape arithmetic, ${p.computeOnCpu.length} compute)`;
  const warning =
    p.computeOnCpu.length >= FALLBACK_WARN_AT
      ? `${p.computeOnCpu.length} compute node(s) fall back to the CPU on ${backend}, each a copy between the GPU and the host: ${p.computeOnCpu.slice(0, 8).join(', ')}${p.computeOnCpu.length > 8 ? ', …' : ''}`
      : null;
  return { line, warning };
}
