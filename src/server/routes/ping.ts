/**
 * `GET /ping`: 200 once the model is loaded; 503 while it loads and from the moment a stop signal
 * arrives (load balancers and SageMaker poll it).
 */
import type { FastifyInstance } from 'fastify';
import type { ModelHost } from '../model-host.js';

export function pingRoute(app: FastifyInstance, host: ModelHost): void {
  app.get('/ping', async () => {
    const unavailable = host.unavailable();
    if (unavailable) throw unavailable;
    const names = host.names();
    return names.length === 1 ? { status: 'ok', model: names[0] } : { status: 'ok', models: names };
  });
}
