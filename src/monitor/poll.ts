/** Reads a kiln server's GET /stats, the one source of `kiln top` and `kiln monitor`. */
import { KilnError } from '../core/errors.js';
import type { SchedulerStats } from '../runtime/scheduler.js';

export interface ServerStats {
  model: string;
  layout: {
    device?: string;
    replicas: number;
    threadsPerReplica: number;
    maxBatch: number;
    maxDelayMs: number;
    buckets: number[];
  };
  scheduler: SchedulerStats;
  /** Present on servers that report their process (resident memory, heap). */
  process?: { rssBytes: number; heapUsedBytes: number };
}

export async function fetchStats(url: string, apiKey: string | null): Promise<ServerStats> {
  const target = `${url.replace(/\/$/, '')}/stats`;
  let res: Response;
  try {
    res = await fetch(target, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
  } catch (err) {
    throw new KilnError(
      'KILN_ERR_MONITOR_UNREACHABLE',
      {
        url: target,
        reason:
          (err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message,
      },
      { cause: err },
    );
  }
  if (!res.ok) {
    const body = await res.text();
    throw new KilnError('KILN_ERR_MONITOR_UNREACHABLE', {
      url: target,
      reason: `it answered ${res.status}: ${body.slice(0, 200)}`,
    });
  }
  return (await res.json()) as ServerStats;
}
