/**
 * `kiln serve`'s HTTP server. It composes: error mapping, drain, the optional API key, metrics
 * and the routes. It listens before the model is loaded so health checks see 503 (loading)
 * rather than nothing.
 */
import { createServer as createHttpServer } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { KilnError } from '../core/errors.js';
import { debug } from '../core/log.js';
import { installEarlyRefusal, type RawRefusalOptions, refuseRaw } from './admission.js';
import { installApiKey } from './auth.js';
import { RequestTracker } from './drain.js';
import { installErrorHandling } from './http-errors.js';
import { DEFAULT_MAX_TEXT_CHARS, type RequestLimits } from './limits.js';
import { ServerMetrics } from './metrics.js';
import { ModelHost } from './model-host.js';
import type { RouteContext } from './routes/context.js';
import { dashboardRoute } from './routes/dashboard.js';
import { embeddingRoutes } from './routes/embeddings.js';
import { invocationsRoute } from './routes/invocations.js';
import { kserveRoutes } from './routes/kserve.js';
import { metricsRoute } from './routes/metrics.js';
import { pingRoute } from './routes/ping.js';
import { predictRoute } from './routes/predict.js';
import { statsRoute } from './routes/stats.js';

export interface ServerOptions {
  /** Address to bind; loopback unless told otherwise. @defaultValue '127.0.0.1' */
  host?: string;
  /** TCP port; 0 picks a free one. @defaultValue 8080 */
  port?: number;
  /** When set, every route but the health checks needs `authorization: Bearer <key>` or `x-api-key`. */
  apiKey?: string | null;
  /** Largest request body accepted, in bytes. @defaultValue 1 MiB */
  bodyLimit?: number;
  /** Most characters per text; longer ones answer 413. @defaultValue 20000 */
  maxTextChars?: number;
  /** Deadline of a classifying request from its arrival, in ms; later answers are 504. @defaultValue null (none) */
  timeoutMs?: number | null;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** fastify's default keep-alive timeout, longer than load balancers' idle timeouts (60 s on AWS). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** Health checks: no API key (probes carry none) and they answer while draining (503 then). */
const HEALTH_PATHS = ['/ping', '/v2/health/live', '/v2/health/ready'];
const ROUTES =
  'GET /ping, POST /predict, POST /v1/embeddings, POST /embed, GET /stats, GET /dashboard, GET /metrics, POST /invocations, GET /v2, GET /v2/health/live, GET /v2/health/ready, ' +
  'GET /v2/models/{name}, GET /v2/models/{name}/ready and POST /v2/models/{name}/infer';

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
      const refusal: RawRefusalOptions = {
        host: model,
        apiKey,
        publicPaths: HEALTH_PATHS,
        count: (...args) => metrics.count(...args),
      };
      const server = createHttpServer((request, response) => {
        let refused = false;
        try {
          refused = refuseRaw(request, response, refusal);
        } catch (err) {
          // Nothing may throw here, outside fastify: a request the early check cannot judge goes on to fastify.
          debug(
            `early refusal check failed for ${request.method} ${(request.url ?? '').split('?')[0]}: ${(err as Error).message}`,
          );
        }
        if (!refused) handler(request, response);
      });
      // fastify's own defaults for the server it would have made.
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      server.requestTimeout = 0;
      return server;
    },
  });
  // JSON only: fastify's default text/plain parser would turn a stray string into a body.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app, { bodyLimit, routes: () => ROUTES });
  metrics.install(app);
  tracker.install(app, { host: model, healthPaths: HEALTH_PATHS });
  installApiKey(app, { apiKey, publicPaths: HEALTH_PATHS });
  // After auth: an unauthenticated client learns nothing about the load.
  installEarlyRefusal(app, model);

  const context: RouteContext = { host: model, limits };
  pingRoute(app, model);
  predictRoute(app, context);
  statsRoute(app, model);
  dashboardRoute(app);
  metricsRoute(app, metrics);
  invocationsRoute(app, context);
  kserveRoutes(app, context);
  embeddingRoutes(app, context);

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
      // Every received request is waiting on the classifier, which stays open until they are answered.
      await tracker.idle();
      await close();
    },
    close,
  };
}
