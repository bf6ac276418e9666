/** Optional API key: when set, every route but those open to probes needs it (route.ts's `Access`). */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../core/errors.js';
import type { Access } from './route.js';

function matches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether a request to a route with `access` may pass: the route is open to probes, or the
 * request carries the key (Bearer, x-api-key, or `?key=` on pages). Shared by the fastify hook
 * and the raw early refusal.
 */
export function authorized(apiKey: string, access: Access, url: string, headers: IncomingHttpHeaders): boolean {
  if (access === 'probe') return true;
  const header = headers.authorization;
  const bearer = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : null;
  const mark = url.indexOf('?');
  const given =
    bearer ??
    (typeof headers['x-api-key'] === 'string' ? headers['x-api-key'] : null) ??
    (access === 'page' && mark !== -1 ? new URLSearchParams(url.slice(mark + 1)).get('key') : null);
  return given !== null && matches(given, apiKey);
}

export function installApiKey(app: FastifyInstance, apiKey: string | null): void {
  if (!apiKey) return;
  app.addHook('onRequest', async (request) => {
    // A path no route matches needs the key too: without it, a client learns nothing of the routes.
    const access = request.routeOptions.config.route?.access ?? 'key';
    if (!authorized(apiKey, access, request.url, request.headers))
      throw new KilnError('KILN_ERR_HTTP_UNAUTHORIZED', {});
  });
}
