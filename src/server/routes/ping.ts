/** `GET /ping`: 200 once the model is loaded, 503 before (load balancers and SageMaker poll it). */
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../../core/errors.js';
import type { ModelHost } from '../model-host.js';

export function pingRoute(app: FastifyInstance, host: ModelHost): void {
  app.get('/ping', async (_request, reply) => {
    if (!host.isReady()) {
      const err = new KilnError('KILN_ERR_HTTP_NOT_READY', {});
      return reply.status(err.status).send(err.toJSON());
    }
    return { status: 'ok', model: host.ready().manifest.name };
  });
}
