/**
 * `GET /stats`: the scheduler's snapshot (queue, replicas, batch and padding histograms, recent
 * latency) and the process's memory, as JSON. `kiln top` and `kiln monitor` read it.
 */
import type { FastifyInstance } from 'fastify';
import type { ModelHost } from '../model-host.js';

export function statsRoute(app: FastifyInstance, host: ModelHost): void {
  app.get<{ Querystring: { model?: string } }>('/stats', async (request) => {
    // With several models, ?model= picks one; without it, the first (top and monitor watch one).
    const classifier =
      request.query.model !== undefined ? host.ready(request.query.model) : (host.all()[0] ?? host.ready());
    const memory = process.memoryUsage();
    return {
      model: classifier.manifest.name,
      layout: classifier.layout,
      scheduler: classifier.stats(),
      process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
    };
  });
}
