/**
 * The operator check: every node of the graph (subgraphs and local functions included) against
 * the kernels the backend registers. It runs before any other compile work, like the Neuron
 * compiler's operator support matrix, so an unsupported model fails in milliseconds with the
 * nodes named instead of deep inside ONNX Runtime.
 */
import { KilnError } from '../core/errors.js';
import { operatorUses, opsetImports } from '../onnx/graph.js';
import type { ModelProto } from '../onnx/proto.js';
import type { Backend } from '../runtime/binding.js';
import { CPU_KERNELS, type OpsetRange } from '../runtime/cpu-kernels.js';

export interface UnsupportedOp {
  domain: string;
  opType: string;
  count: number;
  /** Up to five node names, for the error message. */
  nodes: string[];
  reason: string;
}

// A GPU provider runs what it has kernels for and ONNX Runtime places the rest on the CPU, so
// every node needs a CPU kernel on every device; which ones leave the GPU is the operator
// report's (compile's placement step, from a profiled run).
const KERNELS: Record<Backend, typeof CPU_KERNELS> = { cpu: CPU_KERNELS, webgpu: CPU_KERNELS, cuda: CPU_KERNELS };

/** Ops ONNX Runtime resolves while loading the graph, so no kernel is registered for them. */
const RESOLVED_AT_LOAD = new Set([':Constant']);

const MAX_NODES_LISTED = 5;

function covers(ranges: readonly OpsetRange[], opset: number): boolean {
  const since = Math.min(...ranges.map((r) => r[0]));
  const until = ranges.some((r) => r[1] === null) ? Infinity : Math.max(...ranges.map((r) => r[1] ?? 0));
  return opset >= since && opset <= until;
}

export function findUnsupportedOps(model: ModelProto, backend: Backend): UnsupportedOp[] {
  const table = KERNELS[backend];
  const opsets = opsetImports(model);
  const localFunctions = new Set((model.functions ?? []).map((f) => `${f.domain ?? ''}:${f.name ?? ''}`));
  const uses = operatorUses(model.graph ?? {});
  for (const fn of model.functions ?? []) uses.push(...operatorUses({ node: fn.node ?? [] }));

  const found = new Map<string, UnsupportedOp>();
  for (const use of uses) {
    const key = `${use.domain}:${use.opType}`;
    if (RESOLVED_AT_LOAD.has(key) || localFunctions.has(key)) continue;
    const domainKernels = table[use.domain];
    const ranges = domainKernels?.[use.opType];
    const opset = opsets[use.domain];
    let reason: string | null = null;
    if (!domainKernels) reason = `domain "${use.domain}" is unknown to the ${backend} backend`;
    else if (!ranges) reason = `no ${backend} kernel for this operator`;
    else if (opset !== undefined && !covers(ranges, opset)) {
      reason = `opset ${opset} is outside the versions the ${backend} backend implements (${ranges.map((r) => (r[1] === null ? `${r[0]}+` : `${r[0]}-${r[1]}`)).join(', ')})`;
    }
    if (reason === null) continue;
    const entry = found.get(key) ?? { domain: use.domain, opType: use.opType, count: 0, nodes: [], reason };
    entry.count += use.count;
    entry.nodes.push(...use.nodes.slice(0, MAX_NODES_LISTED - entry.nodes.length));
    found.set(key, entry);
  }
  return [...found.values()];
}

export function unsupportedOpsError(unsupported: UnsupportedOp[], backend: Backend): KilnError {
  const details = unsupported
    .map((u) => {
      const more = u.count > u.nodes.length ? `, and ${u.count - u.nodes.length} more` : '';
      return `  - ${u.opType} (domain "${u.domain || 'ai.onnx'}", ${u.count} node${u.count === 1 ? '' : 's'}: ${u.nodes.map((n) => JSON.stringify(n)).join(', ')}${more}): ${u.reason}`;
    })
    .join('\n');
  return new KilnError('KILN_ERR_OP_UNSUPPORTED', { backend, count: unsupported.length, details });
}
