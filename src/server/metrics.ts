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
import type { SchedulerStats } from '../runtime/scheduler.js';
import type { ModelHost } from './model-host.js';

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
    collectDefaultMetrics({ register: this.registry, prefix: 'kiln_' });
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
    new Gauge({
      name: 'kiln_http_requests_in_flight',
      help: 'HTTP requests received and not yet answered.',
      registers,
      collect() {
        this.set(inFlightRequests());
      },
    });
    new Gauge({
      name: 'kiln_model_ready',
      help: '1 when the model is loaded and the server takes work, else 0 (loading or draining).',
      registers,
      collect() {
        this.set(host.isReady() ? 1 : 0);
      },
    });

    const queueWait = new Histogram({
      name: 'kiln_queue_wait_seconds',
      help: 'Longest time a request of each batch waited before the batch started.',
      buckets: SECONDS,
      registers,
    });
    const compute = new Histogram({
      name: 'kiln_batch_compute_seconds',
      help: 'Time each batch spent on its replica.',
      buckets: SECONDS,
      registers,
    });
    const batchSize = new Histogram({
      name: 'kiln_batch_size',
      help: 'Sequences per batch.',
      buckets: BATCH_SIZES,
      registers,
    });
    const fill = new Histogram({
      name: 'kiln_batch_fill_ratio',
      help: 'Real tokens / padded tokens of each batch (1 = no padding).',
      buckets: FILL,
      registers,
    });
    const padded = new Histogram({
      name: 'kiln_batch_padded_length_tokens',
      help: 'Sequence length each batch was padded to (its bucket).',
      buckets: LENGTHS,
      registers,
    });
    const tokens = new Counter({
      name: 'kiln_tokens_total',
      help: 'Real (unpadded) tokens of the sequences answered; rate() gives tokens per second.',
      registers,
    });
    const paddedTokens = new Counter({
      name: 'kiln_padded_tokens_total',
      help: 'Tokens computed, padding included.',
      registers,
    });
    const failures = new Counter({
      name: 'kiln_batch_failures_total',
      help: 'Batches that failed on a replica (retried or failed to the client).',
      labelNames: ['replica'],
      registers,
    });
    const rejections = new Counter({
      name: 'kiln_queue_rejections_total',
      help: 'Requests refused because the queue was full (HTTP 429).',
      registers,
    });

    const stats = () => safeStats(host);
    new Gauge({
      name: 'kiln_queue_depth',
      help: 'Sequences waiting in the queue.',
      registers,
      collect() {
        this.set(stats()?.queueDepth ?? 0);
      },
    });
    new Gauge({
      name: 'kiln_batches_in_flight',
      help: 'Batches on replicas now, those sent ahead included.',
      registers,
      collect() {
        this.set(stats()?.inFlight ?? 0);
      },
    });
    new Gauge({
      name: 'kiln_replica_busy_ratio',
      help: 'Share of its lifetime each replica spent computing (busy time / uptime).',
      labelNames: ['replica'],
      registers,
      collect() {
        this.reset();
        const s = stats();
        for (const r of s?.replicas ?? [])
          this.set({ replica: String(r.id) }, s!.uptimeMs > 0 ? Math.min(1, r.busyMs / s!.uptimeMs) : 0);
      },
    });

    this.onBatch = (message) => {
      const e = message as BatchEvent;
      if (!e.ok) {
        failures.inc({ replica: String(e.replica) });
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
