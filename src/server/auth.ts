/** Optional API key: when set, every route except the health checks (`publicPaths`) needs it. */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../core/errors.js';

function matches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function installApiKey(app: FastifyInstance, options: { apiKey: string | null; publicPaths: readonly string[] }): void {
  const { apiKey } = options;
  if (!apiKey) return;
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? '';
    if (options.publicPaths.includes(path)) return;
    const header = request.headers.authorization;
    const bearer = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : null;
    const given = bearer ?? (typeof request.headers['x-api-key'] === 'string' ? request.headers['x-api-key'] : null);
    if (given === null || !matches(given, apiKey)) throw new KilnError('KILN_ERR_HTTP_UNAUTHORIZED', {});
  });
}
