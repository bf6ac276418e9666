/**
 * `GET /stats`: the scheduler's snapshot (queue, replicas, batch and padding histograms, recent
 * latency) and the process's memory, as JSON. `kiln top` and `kiln monitor` read it.
 */
import { defineRoute } from '../route.js';

export const statsRoutes = [
  defineRoute<{ Querystring: { model?: string } }>({
    method: 'GET',
    url: '/stats',
    // The dashboard page reads it with the key it was opened with.
    access: 'page',
    handler: async (request, _reply, { host }) => {
      // With several models, ?model= picks one; without it, the first (top and monitor watch one).
      const model =
        request.query.model !== undefined ? host.ready(request.query.model) : (host.all()[0] ?? host.ready());
      const memory = process.memoryUsage();
      return {
        model: model.manifest.name,
        layout: model.layout,
        scheduler: model.stats(),
        process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
      };
    },
  }),
];
