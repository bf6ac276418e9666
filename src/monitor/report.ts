/**
 * `kiln monitor`'s report for one period, shaped like neuron-monitor's JSON (runtime data with
 * core counters, execution stats with latency percentiles and an error summary, memory used;
 * system data; instance info), with kiln's replicas where neuron-monitor has NeuronCores.
 */
import { availableParallelism, cpus, freemem, hostname, loadavg, totalmem } from 'node:os';
import { allReplicas } from '../runtime/scheduler.js';
import type { ServerStats } from './poll.js';

export interface MonitorReport {
  timestamp: string;
  period_s: number;
  kiln_runtime_data: Array<{
    url: string;
    model: string;
    /** Where the model runs (cpu, webgpu, cuda). */
    device: string;
    error: string;
    report: {
      replica_counters: {
        period_s: number;
        /** Per replica id; the default layout's wide replica (every core, for lone requests) is `wide`. */
        replicas_in_use: Record<string, { utilization: number; batches: number; items: number; failures: number }>;
      };
      execution_stats: {
        period_s: number;
        error_summary: { failed: number; rejected: number };
        execution_summary: {
          completed: number;
          requests_per_s: number;
          batches: number;
          avg_batch: number;
          queue_depth: number;
          in_flight: number;
          fill: number;
        };
        latency_stats: { window_s: number; total_latency_ms: { p50: number; p90: number; p99: number; p100: number } };
      };
      memory_used: { rss_bytes: number | null; heap_used_bytes: number | null };
    };
  }>;
  system_data: {
    memory_info: { memory_total_bytes: number; memory_used_bytes: number };
    vcpu_usage: { load_average_1m: number };
  };
  instance_info: { hostname: string; cpu: string; cores: number };
}

export function buildReport(
  url: string,
  previous: ServerStats | null,
  current: ServerStats | null,
  periodS: number,
  error = '',
): MonitorReport {
  const replicas: MonitorReport['kiln_runtime_data'][number]['report']['replica_counters']['replicas_in_use'] = {};
  let completed = 0;
  let batches = 0;
  let failed = 0;
  let rejected = 0;
  let real = 0;
  let padded = 0;
  if (current) {
    const s = current.scheduler;
    const p = previous?.scheduler;
    const elapsedMs = p ? Math.max(1, s.uptimeMs - p.uptimeMs) : Math.max(1, s.uptimeMs);
    // The wide replica (the default layout's, for lone requests on every core) is listed last, as `wide`.
    const earlier = p ? allReplicas(p) : [];
    for (const r of allReplicas(s)) {
      const before = earlier.find((x) => x.id === r.id);
      replicas[r === s.wide ? 'wide' : String(r.id)] = {
        utilization: Math.min(100, (100 * (r.busyMs - (before?.busyMs ?? 0))) / elapsedMs),
        batches: r.batches - (before?.batches ?? 0),
        items: r.items - (before?.items ?? 0),
        failures: r.failures - (before?.failures ?? 0),
      };
    }
    completed = s.completed - (p?.completed ?? 0);
    batches = s.batches - (p?.batches ?? 0);
    failed = s.failed - (p?.failed ?? 0);
    rejected = s.rejected - (p?.rejected ?? 0);
    real = s.realTokens - (p?.realTokens ?? 0);
    padded = s.paddedTokens - (p?.paddedTokens ?? 0);
    periodS = elapsedMs / 1000;
  }
  const recent = current?.scheduler.recent;
  return {
    timestamp: new Date().toISOString(),
    period_s: periodS,
    kiln_runtime_data: [
      {
        url,
        model: current?.model ?? '',
        device: current?.layout.device ?? 'cpu',
        error,
        report: {
          replica_counters: { period_s: periodS, replicas_in_use: replicas },
          execution_stats: {
            period_s: periodS,
            error_summary: { failed, rejected },
            execution_summary: {
              completed,
              requests_per_s: completed / Math.max(periodS, 1e-9),
              batches,
              avg_batch: batches > 0 ? completed / batches : 0,
              queue_depth: current?.scheduler.queueDepth ?? 0,
              in_flight: current?.scheduler.inFlight ?? 0,
              fill: padded > 0 ? real / padded : 0,
            },
            latency_stats: {
              window_s: (recent?.windowMs ?? 0) / 1000,
              total_latency_ms: {
                p50: recent?.p50Ms ?? 0,
                p90: recent?.p90Ms ?? 0,
                p99: recent?.p99Ms ?? 0,
                p100: recent?.maxMs ?? 0,
              },
            },
          },
          memory_used: {
            rss_bytes: current?.process?.rssBytes ?? null,
            heap_used_bytes: current?.process?.heapUsedBytes ?? null,
          },
        },
      },
    ],
    system_data: {
      memory_info: { memory_total_bytes: totalmem(), memory_used_bytes: totalmem() - freemem() },
      vcpu_usage: { load_average_1m: loadavg()[0] ?? 0 },
    },
    instance_info: { hostname: hostname(), cpu: cpus()[0]?.model.trim() ?? 'unknown', cores: availableParallelism() },
  };
}
