/**
 * The memory check before loading replicas, so that a layout too large for the machine is
 * refused with the fix instead of failing inside ONNX Runtime: replicas × the per-replica figure
 * compile measured, against the memory available.
 */
import { readFile } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import { KilnError } from '../core/errors.js';
import type { MemoryFigures } from '../model/artifact.js';

/** Memory this process may still use: the cgroup limit when there is one (containers), else free memory. */
export async function availableMemory(): Promise<{ bytes: number; source: string }> {
  const override = process.env.KILN_MEMORY_AVAILABLE;
  if (override && /^\d+$/.test(override)) return { bytes: Number(override), source: 'KILN_MEMORY_AVAILABLE' };
  try {
    const limit = (await readFile('/sys/fs/cgroup/memory.max', 'utf8')).trim();
    const used = Number((await readFile('/sys/fs/cgroup/memory.current', 'utf8')).trim());
    if (/^\d+$/.test(limit) && Number(limit) < totalmem())
      return { bytes: Math.max(0, Number(limit) - used), source: 'the cgroup memory limit' };
  } catch {
    // No cgroup v2 limit readable: fall back to the machine's free memory.
  }
  return { bytes: freemem(), source: 'free memory' };
}

const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Refuses a layout whose replicas would not fit, before anything is loaded. */
export async function checkLayoutFits(
  memory: MemoryFigures | undefined,
  replicas: number,
  context: { model: string; maxBatch: number; maxLength: number; precision: string },
): Promise<void> {
  if (!memory) return;
  const needed = (memory.processBytes ?? 0) + replicas * memory.perReplicaBytes;
  const available = await availableMemory();
  if (needed <= available.bytes * 0.9) return;
  const fits = Math.max(0, Math.floor((available.bytes * 0.9 - (memory.processBytes ?? 0)) / memory.perReplicaBytes));
  const fixes = [
    fits > 0 ? `use --replicas ${fits}` : null,
    `compile with a smaller --max-batch (now ${context.maxBatch}) or --max-length (now ${context.maxLength})`,
    context.precision !== 'int8' ? 'compile with --precision int8' : null,
  ].filter(Boolean);
  throw new KilnError('KILN_ERR_MEMORY_INSUFFICIENT', {
    model: context.model,
    replicas,
    perReplica: mib(memory.perReplicaBytes),
    needed: mib(needed),
    available: `${mib(available.bytes)} (${available.source})`,
    fix: fixes.join(', or '),
  });
}
