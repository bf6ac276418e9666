/**
 * `GET /ping`: 200 once the model is loaded; 503 while it loads and from the moment a stop signal
 * arrives (load balancers and SageMaker poll it).
 */
import { defineRoute } from '../route.js';

export const pingRoutes = [
  defineRoute({
    method: 'GET',
    url: '/ping',
    access: 'probe',
    handler: async (_request, _reply, { host }) => {
      const unavailable = host.unavailable();
      if (unavailable) throw unavailable;
      const names = host.names();
      return names.length === 1 ? { status: 'ok', model: names[0] } : { status: 'ok', models: names };
    },
  }),
];
