/**
 * `POST /predict`: `{"text"}` → `{"label","score"}`; `{"texts": […]}` → `{"predictions": […]}`;
 * `"return_all_scores": true` adds `scores`, every label with its probability, in label order.
 */
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../../core/errors.js';
import { predictionBody } from '../answers.js';
import { classifyWithin } from '../limits.js';
import type { RouteContext } from './context.js';

interface PredictBody {
  text?: string;
  texts?: string[];
  return_all_scores?: boolean;
  /** Which model, when the server serves several (a model repository). */
  model?: string;
}

const bodySchema = {
  type: 'object',
  properties: {
    text: { type: 'string' },
    texts: { type: 'array', items: { type: 'string' } },
    return_all_scores: { type: 'boolean' },
    model: { type: 'string' },
  },
  additionalProperties: false,
} as const;

export function predictRoute(app: FastifyInstance, { host, limits }: RouteContext): void {
  app.post<{ Body: PredictBody }>('/predict', { schema: { body: bodySchema } }, async (request, reply) => {
    const { text, texts, return_all_scores: allScores = false, model } = request.body;
    if ((text === undefined) === (texts === undefined)) {
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: text === undefined ? 'it has neither "text" nor "texts"' : 'it has both "text" and "texts"' });
    }
    if (texts && texts.length === 0) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"texts" is an empty list' });
    const classifier = host.readyFor(model, 'POST /predict', ['text-classification']);
    if (text !== undefined) {
      const [prediction] = await classifyWithin(classifier, [text], () => '"text"', limits, reply.elapsedTime);
      return predictionBody(prediction!, classifier.labels, allScores);
    }
    const predictions = await classifyWithin(classifier, texts!, (i) => `"texts[${i}]"`, limits, reply.elapsedTime);
    return { predictions: predictions.map((p) => predictionBody(p, classifier.labels, allScores)) };
  });
}
