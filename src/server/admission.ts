/**
 * Early refusal under overload: an inference request whose model is already refusing work (its
 * queue is full, or the wait would pass --max-queue-ms) gets its 429 before its body is read and
 * before anything is parsed, validated, tokenized or decoded.
 *
 * Two doors, one rule ({@link refusalFor}). Requests from sockets are refused on the raw Node
 * request, before fastify builds its request and reply objects and runs its hooks and error
 * handler ({@link refuseRaw}, installed by the server's factory): at 4× the sustainable rate
 * three requests in four are refused, and their cost on the one HTTP thread decides how late
 * the accepted ones are answered. The same rule runs as an onRequest hook for requests the raw
 * door has not judged (those that reach fastify another way: `app.inject`). Neither refuses a request that would not get past
 * the API key or that arrives while loading or draining: fastify answers those (401, 503).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { KilnError } from '../core/errors.js';
import { authorized } from './auth.js';
import { errorBody, errorHeaders } from './http-errors.js';
import type { ModelHost } from './model-host.js';

/** Routes that queue inference work, with the route label fastify gives them in the metrics. */
const INFERENCE_ROUTES: ReadonlyArray<{ path: RegExp; route: string }> = [
  { path: /^\/predict$/, route: '/predict' },
  { path: /^\/invocations$/, route: '/invocations' },
  { path: /^\/v1\/embeddings$/, route: '/v1/embeddings' },
  { path: /^\/embed$/, route: '/embed' },
  { path: /^\/v2\/models\/([^/]+)\/infer$/, route: '/v2/models/:name/infer' },
  { path: /^\/v2\/models\/([^/]+)\/versions\/[^/]+\/infer$/, route: '/v2/models/:name/versions/:version/infer' },
];

/** The refusal a request gets now, with its route label; null when it goes on to its route. */
export function refusalFor(
  host: ModelHost,
  method: string | undefined,
  url: string,
): { error: KilnError; route: string } | null {
  if (method !== 'POST' || host.unavailable() !== null) return null;
  const mark = url.indexOf('?');
  const path = mark === -1 ? url : url.slice(0, mark);
  for (const { path: pattern, route } of INFERENCE_ROUTES) {
    const match = pattern.exec(path);
    if (match === null) continue;
    // Without a name in the path the target is known only when one model is served.
    const name = match[1] === undefined ? undefined : decoded(match[1]);
    if (name === null) return null;
    const target =
      name !== undefined
        ? host.all().find((m) => m.manifest.name === name)
        : host.names().length === 1
          ? host.all()[0]
          : undefined;
    const error = target?.refuseEarly() ?? null;
    return error === null ? null : { error, route };
  }
  return null;
}

/** A percent-encoded path segment, or null when it does not decode (fastify then answers it). */
function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Requests the raw door has already judged and let through: the hook does not judge them again. */
const judged = new WeakSet<IncomingMessage>();

export interface RawRefusalOptions {
  host: ModelHost;
  apiKey: string | null;
  publicPaths: readonly string[];
  /** Counts the answer in the server's metrics, as fastify's onResponse hook does for the rest. */
  count: (method: string, route: string, status: number, seconds: number) => void;
}

/**
 * Answers 429 on the raw request when its model refuses work; false when the request should go
 * on to fastify. The answer is the one fastify's error handler would give: same status, body
 * and headers. The unread body is discarded by Node, and the connection stays open.
 */
export function refuseRaw(request: IncomingMessage, response: ServerResponse, options: RawRefusalOptions): boolean {
  const url = request.url ?? '/';
  if (request.method !== 'POST') return false;
  if (options.apiKey && !authorized(options.apiKey, url, request.headers, options.publicPaths)) return false;
  const started = performance.now();
  const refusal = refusalFor(options.host, request.method, url);
  if (refusal === null) {
    judged.add(request);
    return false;
  }
  const body = JSON.stringify(errorBody(url, refusal.error));
  response.writeHead(refusal.error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...errorHeaders(refusal.error),
  });
  response.end(body);
  options.count('POST', refusal.route, refusal.error.status, (performance.now() - started) / 1000);
  return true;
}

export function installEarlyRefusal(app: FastifyInstance, host: ModelHost): void {
  app.addHook('onRequest', async (request) => {
    if (judged.has(request.raw)) return;
    const refusal = refusalFor(host, request.method, request.url);
    if (refusal) throw refusal.error;
  });
}
