/**
 * `POST /predict`: `{"text"}` → `{"label","score"}`; `{"texts": […]}` → `{"predictions": […]}`;
 * `"return_all_scores": true` adds `scores`, every label with its probability, in label order.
 * Image models take `{"image": "<base64>"}`, `{"images": […]}` or the raw bytes with an
 * `image/*` content type, and answer `labels` (the top 5) beside `label` and `score`.
 */
import { KilnError } from '../../core/errors.js';
import { MAX_IMAGE_BYTES } from '../../model/image.js';
import { type ImageClassifier, type ImagePrediction, scoresOf } from '../../runtime/image-classifier.js';
import { decodeBase64, predictionBody } from '../answers.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST } from '../limits.js';
import { defineRoute } from '../route.js';

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

export const predictRoutes = [
  defineRoute<{ Body: PredictBody }, 'text-classification' | 'image-classification'>({
    method: 'POST',
    url: '/predict',
    access: 'key',
    // Raw image bodies may be larger than JSON ones: up to the largest image accepted.
    parsers: [
      {
        types: [/^image\//],
        parseAs: 'buffer',
        bodyLimit: MAX_IMAGE_BYTES,
        parse: (body) => ({ [RAW_IMAGE]: body }),
      },
    ],
    schema: { body: bodySchema },
    expectedBody:
      '{"text": "…"} or {"texts": ["…", …]} (image models: {"image": "<base64>"}, {"images": […]} or an image/* body)',
    inference: { tasks: ['text-classification', 'image-classification'] },
    handler: async (request, _reply, context) => {
      const { text, texts, image, images, return_all_scores: allScores = false, model: name } = request.body;
      const raw = request.body[RAW_IMAGE];
      const { deadline } = context;
      if (raw !== undefined || image !== undefined || images !== undefined) {
        if ([raw, image, images, text, texts].filter((v) => v !== undefined).length > 1)
          throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', {
            problem: 'it has more than one of "image", "images", "text", "texts" and a raw image',
          });
        if (images && images.length === 0)
          throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: '"images" is an empty list' });
        if (images && images.length > MAX_TEXTS_PER_REQUEST)
          throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: images.length, limit: MAX_TEXTS_PER_REQUEST });
        const model = context.model(name, { tasks: ['image-classification'], what: 'POST /predict with images' });
        const bytes = raw
          ? [new Uint8Array(raw)]
          : image !== undefined
            ? [base64(image, '"image"')]
            : images!.map((b, i) => base64(b, `"images[${i}]"`));
        const describe = (i: number): string =>
          raw ? 'the request body' : image !== undefined ? '"image"' : `"images[${i}]"`;
        const predictions = await model.classify(bytes, describe, { deadline });
        const body = (p: ImagePrediction): object => ({
          label: p.label,
          score: p.score,
          labels: p.labels,
          ...(allScores ? { scores: imageScores(p, model) } : {}),
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
      const model = context.model(name);
      if (model.task === 'image-classification')
        throw new KilnError('KILN_ERR_INPUT_KIND', {
          where: text !== undefined ? '"text"' : '"texts"',
          expected: 'images ({"image": "<base64>"}, {"images": […]} or an image/* body)',
          got: 'a text',
          task: model.task,
        });
      const inputs = text !== undefined ? [text] : texts!;
      const describe = (i: number): string => (text !== undefined ? '"text"' : `"texts[${i}]"`);
      checkTexts(inputs, describe, context.limits);
      const predictions = await model.classify(inputs, describe, { deadline });
      const bodies = predictions.map((p) => predictionBody(p, model.labels, allScores));
      return text !== undefined ? bodies[0] : { predictions: bodies };
    },
  }),
];

/** Every label's score in label order (softmax of the logits, or the graph's own probabilities). */
function imageScores(p: ImagePrediction, model: ImageClassifier): Array<{ label: string; score: number }> {
  return scoresOf(p.logits, model.preprocessing.outputs === 'probabilities').map((score, i) => ({
    label: model.labels[i] ?? String(i),
    score,
  }));
}

function base64(value: string, where: string): Uint8Array {
  const bytes = decodeBase64(value);
  if (!bytes) throw new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: `${where} is not a base64 string` });
  return bytes;
}
