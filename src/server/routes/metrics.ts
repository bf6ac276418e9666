/** `GET /metrics`: the server's Prometheus metrics in the text exposition format. */
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from '../metrics.js';

export function metricsRoute(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}
