/** `POST /predict`: `{"text"}` → `{"label","score"}`; `{"texts": […]}` → `{"predictions": […]}`. */
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../../core/errors.js';
import type { ModelHost } from '../model-host.js';

/** Most texts one request may carry; larger jobs belong in several requests or `kiln batch`. */
export const MAX_TEXTS_PER_REQUEST = 1024;

interface PredictBody {
  text?: string;
  texts?: string[];
}

const bodySchema = {
  type: 'object',
  properties: {
    text: { type: 'string' },
    texts: { type: 'array', items: { type: 'string' } },
  },
  additionalProperties: false,
} as const;

export function predictRoute(app: FastifyInstance, host: ModelHost): void {
  app.post<{ Body: PredictBody }>('/predict', { schema: { body: bodySchema } }, async (request) => {
    const { text, texts } = request.body;
    if ((text === undefined) === (texts === undefined)) {
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: text === undefined ? 'it has neither "text" nor "texts"' : 'it has both "text" and "texts"' });
    }
    if (texts && texts.length === 0) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"texts" is an empty list' });
    if (texts && texts.length > MAX_TEXTS_PER_REQUEST) throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: texts.length, limit: MAX_TEXTS_PER_REQUEST });
    const classifier = host.ready();
    if (text !== undefined) {
      const [prediction] = await classifier.classify([text], () => '"text"');
      return { label: prediction!.label, score: prediction!.score };
    }
    const predictions = await classifier.classify(texts!, (i) => `"texts[${i}]"`);
    return { predictions: predictions.map((p) => ({ label: p.label, score: p.score })) };
  });
}
