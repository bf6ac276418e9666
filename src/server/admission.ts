/**
 * Early refusal under overload: an inference request whose model is already refusing work (its
 * queue is full, or the wait would pass --max-queue-ms) gets its 429 before fastify reads and
 * validates the body and before anything is tokenized or decoded. Under 4× overload most of the
 * main thread's time went to requests that were then refused; refused early, they cost a few
 * microseconds and leave the event loop to the accepted ones.
 */
import type { FastifyInstance } from 'fastify';
import type { ModelHost } from './model-host.js';

/** Routes that queue inference work. */
const INFERENCE_PATHS = [/^\/predict$/, /^\/invocations$/, /^\/v1\/embeddings$/, /^\/embed$/, /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?\/infer$/];

export function installEarlyRefusal(app: FastifyInstance, host: ModelHost): void {
  app.addHook('onRequest', async (request) => {
    if (request.method !== 'POST' || host.unavailable() !== null) return;
    const mark = request.url.indexOf('?');
    const path = mark === -1 ? request.url : request.url.slice(0, mark);
    let model: string | undefined;
    if (!INFERENCE_PATHS.some((re) => { const m = re.exec(path); model = m?.[1]; return m !== null; })) return;
    // Without a name in the path the target is known only when one model is served.
    const target = model !== undefined ? host.all().find((m) => m.manifest.name === decodeURIComponent(model!)) : host.names().length === 1 ? host.all()[0] : undefined;
    const refusal = target?.refuseEarly();
    if (refusal) throw refusal;
  });
}
