/**
 * `kiln serve`'s HTTP server. It composes: the early refusal, error mapping, metrics, drain, the
 * optional API key and the routes of the route table. It listens before the model is loaded so
 * health checks see 503 (loading) rather than nothing.
 */
import { createServer as createHttpServer } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { KilnError } from '../core/errors.js';
import {
  DEFAULT_MAX_CLIENT_BATCH,
  DEFAULT_MAX_LABELS,
  DEFAULT_MAX_TEXT_CHARS,
  type RequestLimits,
} from '../tasks/limits.js';
import { installEarlyRefusal, withEarlyRefusal } from './admission.js';
import { installApiKey } from './auth.js';
import { DEFAULT_HOST, DEFAULT_PORT } from './defaults.js';
import { RequestTracker } from './drain.js';
import { installErrorHandling } from './http-errors.js';
import { ServerMetrics } from './metrics.js';
import { ModelHost } from './model-host.js';
import { installRoutes, ROUTE_LIST } from './route-table.js';

export { DEFAULT_HOST, DEFAULT_PORT };

export interface ServerOptions {
  /** Address to bind; loopback unless told otherwise. @defaultValue '127.0.0.1' */
  host?: string;
  /** TCP port; 0 picks a free one. @defaultValue 8080 */
  port?: number;
  /** When set, every route but the health checks needs the key in `authorization: Bearer` or `x-api-key`. */
  apiKey?: string | null;
  /** Largest request body accepted, in bytes. @defaultValue 1 MiB */
  bodyLimit?: number;
  /** Most characters per text; longer ones answer 413. @defaultValue 20000 */
  maxTextChars?: number;
  /** Most inputs (texts, pairs, images, a rerank's texts) one request may carry, at most 1024; more answer 413. @defaultValue 1024 */
  maxClientBatch?: number;
  /** Most candidate labels one zero-shot request may carry; more answer 413. @defaultValue 32 */
  maxLabels?: number;
  /** Deadline of an inference request from its arrival, in ms; later answers are 504. @defaultValue null (none) */
  timeoutMs?: number | null;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** fastify's default keep-alive timeout, longer than load balancers' idle timeouts (60 s on AWS). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

export interface KilnServer {
  readonly app: FastifyInstance;
  readonly model: ModelHost;
  /** This server's Prometheus registry (GET /metrics). */
  readonly metrics: ServerMetrics;
  /** Starts listening; resolves to the URL (with the real port when 0 was asked). */
  listen(): Promise<string>;
  /**
   * Graceful stop: health checks turn 503 at once, new requests get 503 KILN_ERR_HTTP_DRAINING,
   * requests already received are answered (queued work included); then the model and the
   * listener close. `onDraining` is told how many requests are still in flight.
   */
  drain(signal: string, onDraining?: (inFlight: number) => void): Promise<void>;
  /** Stops at once: closes the listener (in-flight requests finish), then the model. */
  close(): Promise<void>;
}

export function createServer(options: ServerOptions = {}): KilnServer {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const limits: RequestLimits = {
    maxTextChars: options.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS,
    maxClientBatch: options.maxClientBatch ?? DEFAULT_MAX_CLIENT_BATCH,
    maxLabels: options.maxLabels ?? DEFAULT_MAX_LABELS,
    timeoutMs: options.timeoutMs ?? null,
  };
  const model = new ModelHost();
  const tracker = new RequestTracker();
  const metrics = new ServerMetrics(model, () => tracker.inFlight);
  const apiKey = options.apiKey ?? null;
  const app = Fastify({
    bodyLimit,
    logger: false,
    // Validation must reject wrong types, not coerce them ({"text": 5} is a client bug).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
    // Overload is refused on the raw request, before fastify's per-request work (admission.ts).
    serverFactory: (handler) => {
      const server = createHttpServer(
        withEarlyRefusal(handler, { host: model, apiKey, count: (...args) => metrics.count(...args) }),
      );
      // fastify's own defaults for the server it would have made.
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      server.requestTimeout = 0;
      return server;
    },
  });
  // JSON only: fastify's default text/plain parser would turn a stray string into a body.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app, { bodyLimit, routes: ROUTE_LIST });
  metrics.install(app);
  tracker.install(app, model);
  installApiKey(app, apiKey);
  // After auth: an unauthenticated client learns nothing about the load.
  installEarlyRefusal(app, model);
  installRoutes(app, { host: model, limits, metrics });

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await app.close();
        await model.close();
      } finally {
        metrics.close();
      }
    })());

  return {
    app,
    model,
    metrics,
    async listen() {
      const host = options.host ?? DEFAULT_HOST;
      const port = options.port ?? DEFAULT_PORT;
      try {
        return await app.listen({ host, port });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
          throw new KilnError('KILN_ERR_HTTP_PORT_IN_USE', { host, port }, { cause: err });
        throw err;
      }
    },
    async drain(signal, onDraining) {
      model.startDraining(signal);
      onDraining?.(tracker.inFlight);
      // Every received request is waiting on its model, which stays open until they are answered.
      await tracker.idle();
      await close();
    },
    close,
  };
}
