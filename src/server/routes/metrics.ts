/** `GET /metrics`: the server's Prometheus metrics in the text exposition format. */
import { defineRoute } from '../route.js';

export const metricsRoutes = [
  defineRoute({
    method: 'GET',
    url: '/metrics',
    access: 'key',
    handler: async (_request, reply, { metrics }) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    },
  }),
];
