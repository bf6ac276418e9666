/** `GET /stats`: the scheduler's snapshot (queue, replicas, batch and padding histograms) as JSON. */
import type { FastifyInstance } from 'fastify';
import type { ModelHost } from '../model-host.js';

export function statsRoute(app: FastifyInstance, host: ModelHost): void {
  app.get('/stats', async () => {
    const classifier = host.ready();
    return { model: classifier.manifest.name, layout: classifier.layout, scheduler: classifier.stats() };
  });
}
