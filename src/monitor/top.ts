/**
 * `kiln top`'s screen, in the spirit of neuron-top: replica utilization bars, queue, throughput,
 * latency, batch sizes and memory, drawn from one monitor report.
 */
import type { MonitorReport } from './report.js';

const bar = (fraction: number, width: number): string => {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
};

const mib = (bytes: number | null): string => (bytes === null ? '–' : `${(bytes / 2 ** 20).toFixed(0)} MiB`);

export function renderTop(report: MonitorReport, width = 80): string[] {
  const data = report.kiln_runtime_data[0]!;
  const r = data.report;
  const e = r.execution_stats;
  const lat = e.latency_stats.total_latency_ms;
  const barWidth = Math.max(10, Math.min(50, width - 30));
  const lines = [
    `kiln top  ${data.model || '(no model)'}${data.model ? ` on ${data.device}` : ''}  ${data.url}  ${report.timestamp.slice(11, 19)}${data.error ? `  ERROR: ${data.error}` : ''}`,
    '',
    'replicas (busy share of the last period)',
    ...Object.entries(r.replica_counters.replicas_in_use).map(
      ([id, c]) =>
        `  ${id.padStart(4)} ${bar(c.utilization / 100, barWidth)} ${c.utilization.toFixed(0).padStart(3)} %  ${String(c.batches).padStart(4)} batches${c.failures ? `  ${c.failures} failed` : ''}`,
    ),
    '',
    `throughput   ${e.execution_summary.requests_per_s.toFixed(1)} req/s   batches ${e.execution_summary.batches}, avg size ${e.execution_summary.avg_batch.toFixed(1)}, fill ${(e.execution_summary.fill * 100).toFixed(0)} %`,
    `queue        ${e.execution_summary.queue_depth} waiting, ${e.execution_summary.in_flight} batches running`,
    `latency      p50 ${lat.p50.toFixed(1)} ms   p90 ${lat.p90.toFixed(1)} ms   p99 ${lat.p99.toFixed(1)} ms   max ${lat.p100.toFixed(1)} ms   (last ${e.latency_stats.window_s} s)`,
    `errors       ${e.error_summary.failed} failed, ${e.error_summary.rejected} refused (queue full)`,
    `memory       server ${mib(r.memory_used.rss_bytes)}; machine ${mib(report.system_data.memory_info.memory_used_bytes)} of ${mib(report.system_data.memory_info.memory_total_bytes)}; load ${report.system_data.vcpu_usage.load_average_1m.toFixed(2)} on ${report.instance_info.cores} cores`,
    '',
    'q or Ctrl-C to quit',
  ];
  return lines;
}
