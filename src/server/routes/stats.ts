/**
 * `GET /stats`: the scheduler's snapshot (queue, replicas, batch and padding histograms, recent
 * latency) and the process's memory, as JSON. `kiln top` and `kiln monitor` read it.
 */
import type { FastifyInstance } from 'fastify';
import type { ModelHost } from '../model-host.js';

export function statsRoute(app: FastifyInstance, host: ModelHost): void {
  app.get('/stats', async () => {
    const classifier = host.ready();
    const memory = process.memoryUsage();
    return {
      model: classifier.manifest.name,
      layout: classifier.layout,
      scheduler: classifier.stats(),
      process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
    };
  });
}
