/**
 * Early refusal under overload: an inference request whose model is already refusing work (its
 * queue is full, or the wait would pass --max-queue-ms) gets its 429 before its body is read and
 * before anything is parsed, validated, tokenized or decoded.
 *
 * Two doors, one rule ({@link refusalFor}). Requests from sockets are refused on the raw Node
 * request, before fastify builds its request and reply objects and runs its hooks and error
 * handler ({@link withEarlyRefusal}, the listener of the server fastify runs on): at 4× the sustainable rate
 * three requests in four are refused, and their cost on the one HTTP thread decides how late
 * the accepted ones are answered. The same rule runs as an onRequest hook for requests the raw
 * door has not judged (those that reach fastify another way: `app.inject`). Neither refuses a
 * request that would not get past the API key or that arrives while loading or draining:
 * fastify answers those (401, 503).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { KilnError } from '../core/errors.js';
import { debug } from '../core/log.js';
import { authorized } from './auth.js';
import { errorBody, errorHeaders } from './http-errors.js';
import type { ModelHost } from './model-host.js';
import type { RequestHead, RouteSpec } from './route.js';
import { inferenceRouteOf } from './route-table.js';

/**
 * The refusal a request for `route` gets now; null when it goes on to its route. The model is
 * known before the body is read when the path or a header names it, or when only one is served.
 */
function refusalFor(host: ModelHost, route: RouteSpec | undefined, head: RequestHead): KilnError | null {
  if (route?.inference === undefined || host.unavailable() !== null) return null;
  const name = route.inference.target?.(head);
  const target =
    name !== undefined
      ? host.all().find((m) => m.manifest.name === name)
      : host.names().length === 1
        ? host.all()[0]
        : undefined;
  return target?.refuseEarly() ?? null;
}

/** Requests the raw door has already judged and let through: the hook does not judge them again. */
const judged = new WeakSet<IncomingMessage>();

export interface RawRefusalOptions {
  host: ModelHost;
  apiKey: string | null;
  /** Counts the answer in the server's metrics, as fastify's onResponse hook does for the rest. */
  count: (method: string, route: string, status: number, seconds: number) => void;
}

/**
 * Answers 429 on the raw request when its model refuses work; false when the request should go
 * on to fastify. The answer is the one fastify's error handler would give: same status, body
 * and headers. The unread body is discarded by Node, and the connection stays open.
 */
function refuseRaw(request: IncomingMessage, response: ServerResponse, options: RawRefusalOptions): boolean {
  const url = request.url ?? '/';
  const mark = url.indexOf('?');
  const found = inferenceRouteOf(request.method, mark === -1 ? url : url.slice(0, mark));
  if (found === null) return false;
  const { route, params } = found;
  if (options.apiKey && !authorized(options.apiKey, route.access, url, request.headers)) return false;
  const started = performance.now();
  const refusal = refusalFor(options.host, route, { params, headers: request.headers });
  if (refusal === null) {
    judged.add(request);
    return false;
  }
  const body = JSON.stringify(errorBody(url, refusal));
  response.writeHead(refusal.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...errorHeaders(refusal),
  });
  response.end(body);
  options.count(route.method, route.url, refusal.status, (performance.now() - started) / 1000);
  return true;
}

/**
 * Node's request listener for the server fastify runs on: early refusals are answered here, every
 * other request goes on to `next` (fastify's).
 */
export function withEarlyRefusal(next: RequestListener, options: RawRefusalOptions): RequestListener {
  return (request, response) => {
    let refused = false;
    try {
      refused = refuseRaw(request, response, options);
    } catch (err) {
      // Nothing may throw here, outside fastify: a request the early check cannot judge goes on to fastify.
      debug(
        `early refusal check failed for ${request.method} ${(request.url ?? '').split('?')[0]}: ${(err as Error).message}`,
      );
    }
    if (!refused) next(request, response);
  };
}

export function installEarlyRefusal(app: FastifyInstance, host: ModelHost): void {
  app.addHook('onRequest', async (request) => {
    if (judged.has(request.raw)) return;
    const refusal = refusalFor(host, request.routeOptions.config.route, {
      params: request.params as RequestHead['params'],
      headers: request.headers,
    });
    if (refusal) throw refusal;
  });
}
