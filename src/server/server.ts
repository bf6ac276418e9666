/**
 * `kiln serve`'s HTTP server. It composes: error mapping, the optional API key, and the routes.
 * It listens before the model is loaded so health checks see 503 (loading) rather than nothing.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { KilnError } from '../core/errors.js';
import { installApiKey } from './auth.js';
import { installErrorHandling } from './http-errors.js';
import { ModelHost } from './model-host.js';
import { pingRoute } from './routes/ping.js';
import { predictRoute } from './routes/predict.js';
import { statsRoute } from './routes/stats.js';

export interface ServerOptions {
  /** Address to bind; loopback unless told otherwise. @defaultValue '127.0.0.1' */
  host?: string;
  /** TCP port; 0 picks a free one. @defaultValue 8080 */
  port?: number;
  /** When set, every route but GET /ping needs `authorization: Bearer <key>` or `x-api-key`. */
  apiKey?: string | null;
  /** Largest request body accepted, in bytes. @defaultValue 1 MiB */
  bodyLimit?: number;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
const DEFAULT_BODY_LIMIT = 1024 * 1024;
const PUBLIC_PATHS = ['/ping'];

export interface KilnServer {
  readonly app: FastifyInstance;
  readonly model: ModelHost;
  /** Starts listening; resolves to the URL (with the real port when 0 was asked). */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export function createServer(options: ServerOptions = {}): KilnServer {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const app = Fastify({
    bodyLimit,
    logger: false,
    // Validation must reject wrong types, not coerce them ({"text": 5} is a client bug).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false } },
  });
  // JSON only: fastify's default text/plain parser would turn a stray string into a body.
  app.removeContentTypeParser('text/plain');
  const model = new ModelHost();
  installErrorHandling(app, { bodyLimit, routes: () => 'GET /ping, POST /predict and GET /stats' });
  installApiKey(app, { apiKey: options.apiKey ?? null, publicPaths: PUBLIC_PATHS });
  pingRoute(app, model);
  predictRoute(app, model);
  statsRoute(app, model);

  return {
    app,
    model,
    async listen() {
      const host = options.host ?? DEFAULT_HOST;
      const port = options.port ?? DEFAULT_PORT;
      try {
        return await app.listen({ host, port });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new KilnError('KILN_ERR_HTTP_PORT_IN_USE', { host, port }, { cause: err });
        throw err;
      }
    },
    async close() {
      await app.close();
      await model.close();
    },
  };
}
