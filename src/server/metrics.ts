/**
 * Prometheus metrics of one server (docs/metrics.md lists them). Each server has its own
 * registry, so tests and embedders can run several. Batch figures come from the scheduler's
 * diagnostics channels; queue depth, in-flight work and replica busy ratios are read from
 * `stats()` when Prometheus scrapes, so nothing is polled between scrapes.
 *
 * The channels are process-wide: two servers with models in one process count each other's
 * batches (`kiln serve` runs one).
 */
import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type BatchEvent, channels } from '../core/channels.js';
import { allReplicas, type SchedulerStats } from '../runtime/scheduler.js';
import type { ModelHost } from './model-host.js';

const PREFIX = 'kiln_';

/** Units Prometheus names spell otherwise: seconds, bytes and ratios are its base units. */
const NON_BASE_UNITS =
  /_(milliseconds|millis|ms|microseconds|us|nanoseconds|ns|minutes|hours|days|kilobytes|kb|megabytes|mb|gigabytes|gb|bits|percent)(_|$)/;

/**
 * How a metric family breaks Prometheus' naming rules (https://prometheus.io/docs/practices/naming/,
 * which `promtool check metrics` enforces); empty when it keeps them. Only counters end in
 * `_total`; units are base units; histogram and summary names leave `_bucket`, `_sum` and
 * `_count` to their series.
 */
export function namingProblems(family: { name: string; type: string; help?: string }): string[] {
  const { name, type } = family;
  const problems: string[] = [];
  if (!/^[a-z_:][a-z0-9_:]*$/.test(name)) problems.push('is not snake_case');
  if (!name.startsWith(PREFIX)) problems.push(`does not start with ${PREFIX}`);
  if (type === 'counter' && !name.endsWith('_total')) problems.push('is a counter without the _total suffix');
  if (type !== 'counter' && name.endsWith('_total')) problems.push(`is a ${type} with the _total suffix counters keep`);
  if (NON_BASE_UNITS.test(name)) problems.push('has a unit that is not a base unit (seconds, bytes, ratio)');
  if ((type === 'histogram' || type === 'summary') && /_(bucket|sum|count)$/.test(name))
    problems.push(`is a ${type} with a suffix its series add`);
  if (family.help !== undefined && family.help.trim() === '') problems.push('has no help text');
  return problems;
}

/**
 * A registered metric's name, type and help. prom-client's types declare its type as a numeric
 * enum, but its objects carry the exposition format's word ('counter', 'gauge', …).
 */
export function familyOf(metric: { name: string; type: unknown; help: string }): {
  name: string;
  type: string;
  help: string;
} {
  return { name: metric.name, type: String(metric.type), help: metric.help };
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const FILL = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
const LENGTHS = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly duration: Histogram<'method' | 'route'>;
  private readonly onBatch: (message: unknown) => void;
  private readonly onReject: () => void;

  constructor(host: ModelHost, inFlightRequests: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    // prom-client's defaults include gauges named …_total (Node's active handles, requests and
    // resources summed over their types), a suffix Prometheus keeps for counters: promtool
    // refuses them. The gauges of the same name without _total, by type, sum to them.
    for (const metric of this.registry.getMetricsAsArray())
      if (namingProblems(familyOf(metric)).length > 0) this.registry.removeSingleMetric(metric.name);
    this.requests = new Counter({
      name: 'kiln_http_requests_total',
      help: 'HTTP requests answered, by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'kiln_http_request_duration_seconds',
      help: 'Time from request to response, by method and route.',
      labelNames: ['method', 'route'],
      buckets: SECONDS,
      registers,
    });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, buckets, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, registers });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });

    gauge('kiln_http_requests_in_flight', 'HTTP requests received and not yet answered.', inFlightRequests);
    gauge(
      'kiln_model_ready',
      '1 when the model is loaded and the server takes work, else 0 (loading or draining).',
      () => (host.isReady() ? 1 : 0),
    );
    const queueWait = histogram(
      'kiln_queue_wait_seconds',
      'Longest time a request of each batch waited before the batch started.',
      SECONDS,
    );
    const compute = histogram('kiln_batch_compute_seconds', 'Time each batch spent on its replica.', SECONDS);
    const batchSize = histogram('kiln_batch_size', 'Sequences per batch.', BATCH_SIZES);
    const fill = histogram(
      'kiln_batch_fill_ratio',
      'Real tokens / padded tokens of each batch (1 = no padding).',
      FILL,
    );
    const padded = histogram(
      'kiln_batch_padded_length_tokens',
      'Sequence length each batch was padded to (its bucket).',
      LENGTHS,
    );
    const tokens = counter(
      'kiln_tokens_total',
      'Real (unpadded) tokens of the sequences answered; rate() gives tokens per second.',
    );
    const paddedTokens = counter('kiln_padded_tokens_total', 'Tokens computed, padding included.');
    const failures = new Counter({
      name: 'kiln_batch_failures_total',
      help: 'Batches that failed on a replica (retried or failed to the client).',
      labelNames: ['replica'],
      registers,
    });
    const rejections = counter(
      'kiln_queue_rejections_total',
      'Requests refused because the queue was full (HTTP 429).',
    );

    new Gauge({
      name: 'kiln_model_device_info',
      help: 'Always 1, labelled with each loaded model and the device it runs on (cpu, webgpu, cuda).',
      labelNames: ['model', 'device'],
      registers,
      collect() {
        this.reset();
        for (const m of host.all()) this.set({ model: m.manifest.name, device: m.layout.device }, 1);
      },
    });

    const stats = () => safeStats(host);
    // The default layout's wide replica (lone requests on every core) is `wide`, as in kiln top.
    const replicaLabel = (id: number, wide: boolean) => (wide ? 'wide' : String(id));
    gauge('kiln_queue_depth', 'Sequences waiting in the queue.', () => stats()?.queueDepth ?? 0);
    gauge(
      'kiln_batches_in_flight',
      'Batches on replicas now, those sent ahead included.',
      () => stats()?.inFlight ?? 0,
    );
    new Gauge({
      name: 'kiln_replica_busy_ratio',
      help: 'Share of its lifetime each replica spent computing (busy time / uptime).',
      labelNames: ['replica'],
      registers,
      collect() {
        this.reset();
        const s = stats();
        if (!s) return;
        for (const r of allReplicas(s))
          this.set(
            { replica: replicaLabel(r.id, r === s.wide) },
            s.uptimeMs > 0 ? Math.min(1, r.busyMs / s.uptimeMs) : 0,
          );
      },
    });

    this.onBatch = (message) => {
      const e = message as BatchEvent;
      if (!e.ok) {
        // From the event, not a snapshot: stats() is the first model's, and the batch may be another's.
        failures.inc({ replica: replicaLabel(e.replica, e.wide) });
        return;
      }
      queueWait.observe(e.longestWaitMs / 1000);
      compute.observe(e.computeMs / 1000);
      batchSize.observe(e.size);
      fill.observe(e.fill);
      padded.observe(e.paddedLength);
      tokens.inc(Math.round(e.fill * e.paddedLength * e.size));
      paddedTokens.inc(e.paddedLength * e.size);
    };
    this.onReject = () => rejections.inc();
    channels.batch.subscribe(this.onBatch);
    channels.reject.subscribe(this.onReject);
  }

  /** Counts every answered request by its route pattern (unmatched paths share one label). */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', async (request, reply) => {
      this.count(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    });
  }

  /** Counts one answered request (also those answered before fastify saw them: early refusals). */
  count(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.duration.observe({ method, route }, seconds);
  }

  close(): void {
    channels.batch.unsubscribe(this.onBatch);
    channels.reject.unsubscribe(this.onReject);
  }
}

/** The scheduler's snapshot (of the first model in a repository), or null while none is loaded. */
function safeStats(host: ModelHost): SchedulerStats | null {
  return host.all()[0]?.stats() ?? null;
}
