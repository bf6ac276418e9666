/** Optional API key: when set, every route except the health checks (`publicPaths`) needs it. */
import { timingSafeEqual } from 'node:crypto';
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

export function installApiKey(app: FastifyInstance, options: { apiKey: string | null; publicPaths: readonly string[] }): void {
  const { apiKey } = options;
  if (!apiKey) return;
  app.addHook('onRequest', async (request) => {
    const mark = request.url.indexOf('?');
    const path = mark === -1 ? request.url : request.url.slice(0, mark);
    const query = mark === -1 ? '' : request.url.slice(mark + 1);
    if (options.publicPaths.includes(path)) return;
    const header = request.headers.authorization;
    const bearer = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : null;
    const given =
      bearer ??
      (typeof request.headers['x-api-key'] === 'string' ? request.headers['x-api-key'] : null) ??
      (QUERY_KEY_PATHS.includes(path) ? new URLSearchParams(query).get('key') : null);
    if (given === null || !matches(given, apiKey)) throw new KilnError('KILN_ERR_HTTP_UNAUTHORIZED', {});
  });
}
