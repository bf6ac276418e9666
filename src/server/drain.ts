/**
 * Graceful stop: once draining, health checks (the routes open to probes) answer for themselves
 * (503 from their routes, which ask the model host), new requests get 503 KILN_ERR_HTTP_DRAINING,
 * and requests already received run to their answer. `idle()` resolves when none is left.
 */
import type { FastifyInstance } from 'fastify';
import type { ModelHost } from './model-host.js';

export class RequestTracker {
  private count = 0;
  private waiters: Array<() => void> = [];

  get inFlight(): number {
    return this.count;
  }

  /** Counts requests from arrival until their response is sent or the connection drops. */
  install(app: FastifyInstance, host: ModelHost): void {
    app.addHook('onRequest', async (request, reply) => {
      if (host.draining !== null && request.routeOptions.config.route?.access !== 'probe') throw host.unavailable()!;
      this.count += 1;
      // 'close' fires once, whether the response finished or the client went away.
      reply.raw.once('close', () => this.done());
    });
  }

  private done(): void {
    this.count -= 1;
    if (this.count === 0) for (const resolve of this.waiters.splice(0)) resolve();
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
