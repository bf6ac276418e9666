/**
 * `POST /predict`: `{"text"}` → `{"label","score"}`; `{"texts": […]}` → `{"predictions": […]}`;
 * `"return_all_scores": true` adds `scores`, every label with its probability, in label order.
 * Image models take `{"image": "<base64>"}`, `{"images": […]}` or the raw bytes with an
 * `image/*` content type, and answer `labels` (the top 5) beside `label` and `score`.
 */
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../../core/errors.js';
import { MAX_IMAGE_BYTES } from '../../model/image.js';
import { type ImageClassifier, type ImagePrediction, scoresOf } from '../../runtime/image-classifier.js';
import { decodeBase64, predictionBody } from '../answers.js';
import { classifyWithin, MAX_TEXTS_PER_REQUEST, runWithin } from '../limits.js';
import type { RouteContext } from './context.js';

/** Where the image/* parser puts the body: a symbol key, which the JSON schema does not see. */
const RAW_IMAGE = Symbol('raw image');

interface PredictBody {
  text?: string;
  texts?: string[];
  image?: string;
  images?: string[];
  [RAW_IMAGE]?: Buffer;
  return_all_scores?: boolean;
  /** Which model, when the server serves several (a model repository). */
  model?: string;
}

const bodySchema = {
  type: 'object',
  properties: {
    text: { type: 'string' },
    texts: { type: 'array', items: { type: 'string' } },
    image: { type: 'string' },
    images: { type: 'array', items: { type: 'string' } },
    return_all_scores: { type: 'boolean' },
    model: { type: 'string' },
  },
  additionalProperties: false,
} as const;

export function predictRoute(app: FastifyInstance, context: RouteContext): void {
  // A scope of its own: the image/* parser (and its larger body limit) belongs to this route only.
  void app.register(async (scope) => predictInScope(scope, context));
}

function predictInScope(app: FastifyInstance, { host, limits }: RouteContext): void {
  // Raw image bodies may be larger than JSON ones: up to the largest image accepted.
  app.addContentTypeParser(/^image\//, { parseAs: 'buffer', bodyLimit: MAX_IMAGE_BYTES }, (_request, body, done) =>
    done(null, { [RAW_IMAGE]: body }),
  );
  app.post<{ Body: PredictBody }>('/predict', { schema: { body: bodySchema } }, async (request, reply) => {
    const { text, texts, image, images, return_all_scores: allScores = false, model } = request.body;
    const raw = request.body[RAW_IMAGE];
    if (raw !== undefined || image !== undefined || images !== undefined) {
      if ([raw, image, images, text, texts].filter((v) => v !== undefined).length > 1)
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
          problem: 'it has more than one of "image", "images", "text", "texts" and a raw image',
        });
      if (images && images.length === 0)
        throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"images" is an empty list' });
      if (images && images.length > MAX_TEXTS_PER_REQUEST)
        throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: images.length, limit: MAX_TEXTS_PER_REQUEST });
      const classifier = host.readyFor(model, 'POST /predict', ['image-classification']);
      const bytes = raw
        ? [new Uint8Array(raw)]
        : image !== undefined
          ? [base64(image, '"image"')]
          : images!.map((b, i) => base64(b, `"images[${i}]"`));
      const describe = (i: number): string =>
        raw ? 'the request body' : image !== undefined ? '"image"' : `"images[${i}]"`;
      const predictions = await runWithin(limits, reply.elapsedTime, (options) =>
        classifier.classify(bytes, describe, options),
      );
      const body = (p: ImagePrediction): object => ({
        label: p.label,
        score: p.score,
        labels: p.labels,
        ...(allScores ? { scores: allScores_(p, classifier) } : {}),
      });
      return images ? { predictions: predictions.map(body) } : body(predictions[0]!);
    }
    if ((text === undefined) === (texts === undefined)) {
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
        problem: text === undefined ? 'it has neither "text" nor "texts"' : 'it has both "text" and "texts"',
      });
    }
    if (texts && texts.length === 0)
      throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"texts" is an empty list' });
    const classifier = host.readyFor(model, 'POST /predict', ['text-classification', 'image-classification']);
    if (classifier.task === 'image-classification')
      throw new KilnError('KILN_ERR_INPUT_KIND', {
        where: text !== undefined ? '"text"' : '"texts"',
        expected: 'images ({"image": "<base64>"}, {"images": […]} or an image/* body)',
        got: 'a text',
        task: classifier.task,
      });
    if (text !== undefined) {
      const [prediction] = await classifyWithin(classifier, [text], () => '"text"', limits, reply.elapsedTime);
      return predictionBody(prediction!, classifier.labels, allScores);
    }
    const predictions = await classifyWithin(classifier, texts!, (i) => `"texts[${i}]"`, limits, reply.elapsedTime);
    return { predictions: predictions.map((p) => predictionBody(p, classifier.labels, allScores)) };
  });
}

/** Every label's score in label order (softmax of the logits, or the graph's own probabilities). */
function allScores_(p: ImagePrediction, classifier: ImageClassifier): Array<{ label: string; score: number }> {
  return scoresOf(p.logits, classifier.preprocessing.outputs === 'probabilities').map((score, i) => ({
    label: classifier.labels[i] ?? String(i),
    score,
  }));
}

function base64(value: string, where: string): Uint8Array {
  const bytes = decodeBase64(value);
  if (!bytes) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `${where} is not a base64 string` });
  return bytes;
}
