/** Optional API key: when set, every route except the health checks (`publicPaths`) needs it. */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../core/errors.js';

/**
 * Routes a browser opens by address, which cannot carry a header, so they also take the key as
 * `?key=`. Nowhere else: a key in a URL ends up in browser history and proxy logs.
 */
const QUERY_KEY_PATHS: readonly string[] = ['/dashboard', '/stats'];

function matches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether a request may pass: its path is public, or it carries the key (Bearer, x-api-key, or
 * `?key=` on the pages a browser opens). Shared by the fastify hook and the raw early refusal.
 */
export function authorized(
  apiKey: string,
  url: string,
  headers: IncomingHttpHeaders,
  publicPaths: readonly string[],
): boolean {
  const mark = url.indexOf('?');
  const path = mark === -1 ? url : url.slice(0, mark);
  if (publicPaths.includes(path)) return true;
  const header = headers.authorization;
  const bearer = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : null;
  const given =
    bearer ??
    (typeof headers['x-api-key'] === 'string' ? headers['x-api-key'] : null) ??
    (QUERY_KEY_PATHS.includes(path) ? new URLSearchParams(mark === -1 ? '' : url.slice(mark + 1)).get('key') : null);
  return given !== null && matches(given, apiKey);
}

export function installApiKey(
  app: FastifyInstance,
  options: { apiKey: string | null; publicPaths: readonly string[] },
): void {
  const { apiKey } = options;
  if (!apiKey) return;
  app.addHook('onRequest', async (request) => {
    if (!authorized(apiKey, request.url, request.headers, options.publicPaths))
      throw new KilnError('KILN_ERR_HTTP_UNAUTHORIZED', {});
  });
}
