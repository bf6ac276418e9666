/** Image classification: image files → the top labels with their scores. */
import { imageInput } from '../../model/source.js';
import { graphInputs, graphOutputs } from '../../onnx/graph.js';
import { checkLogits } from '../io-check.js';
import { readImages } from '../kserve-tensors.js';
import { labelList, labelOutputs, labelTensors } from '../labels.js';
import { defineTask } from '../task.js';
import { ImageClassifier, type ImagePrediction, scoresOf } from './model.js';

/** Every label's score in label order (softmax of the logits, or the graph's own probabilities). */
function allScores(p: ImagePrediction, model: ImageClassifier): Array<{ label: string; score: number }> {
  return scoresOf(p.logits, model.preprocessing.outputs === 'probabilities').map((score, i) => ({
    label: model.labels[i] ?? String(i),
    score,
  }));
}

export const imageClassification = defineTask<ImageClassifier>({
  name: 'image-classification',
  input: 'image',
  formatVersion: 2,
  detect: {
    architecture: (name) => name.endsWith('ForImageClassification'),
    // One float input of rank 4.
    graph: (model) => imageInput(graphInputs(model.graph ?? {})) !== null,
  },
  compile: {
    labels: 'required',
    checkHead(model, { path, labels }) {
      checkLogits(path, graphOutputs(model.graph ?? {}), [...labels]);
      return { width: labels.length, manifest: {} };
    },
    row: 'logits per image (one per label)',
  },
  open: (dir, manifest, options) => ImageClassifier.open(dir, manifest, options),
  routes: [],
  predict: {
    answer: async (model, inputs, describe, { deadline, allScores: all }) =>
      (await model.infer(inputs, describe, { deadline })).map((p) => ({
        label: p.label,
        score: p.score,
        labels: p.labels,
        ...(all ? { scores: allScores(p, model) } : {}),
      })),
  },
  invocations: {
    answers: async (model, inputs, describe, { deadline }) =>
      (await model.infer(inputs, describe, { deadline })).map((p) => () => ({
        label: p.label,
        score: p.score,
        labels: p.labels,
      })),
  },
  kserve: {
    inputs: (model) => [
      { name: 'image', datatype: 'BYTES', shape: [-1] },
      {
        name: model.preprocessing.input,
        datatype: 'FP32',
        shape: [-1, 3, model.preprocessing.height, model.preprocessing.width],
      },
    ],
    outputs: (model) => labelOutputs(model.labels.length),
    async infer(model, inputs, { deadline }) {
      const describe = (i: number): string => `element ${i} of input "${inputs[0]!.name}"`;
      const images = readImages(inputs, model.preprocessing);
      const predictions =
        images.kind === 'images'
          ? await model.classify(images.images, describe, { deadline })
          : await model.classifyTensors(images.rows, { deadline });
      return labelTensors(predictions, model.labels.length, [predictions.length]);
    },
  },
  answers: {
    json: (p: ImagePrediction) => ({ label: p.label, score: p.score, labels: p.labels, logits: p.logits }),
    line: (p: ImagePrediction) => `${p.label}  ${p.score.toFixed(4)}`,
    batch: (p: ImagePrediction) => ({ label: p.label, score: p.score, labels: p.labels }),
  },
  batch: { verb: 'classifying', summary: (_model, labels) => `labels ${labels}` },
  bench: {
    unit: 'images/s',
    request: (input) => ({ path: '/predict', body: { image: Buffer.from(input as Uint8Array).toString('base64') } }),
  },
  serve: {
    describe: (m) =>
      m.image
        ? `${m.image.height} × ${m.image.width} images, ${m.labels.length} labels`
        : `labels ${labelList(m.labels)}`,
    example: (url, name, named) =>
      `curl -s ${url}/predict -H 'content-type: image/jpeg' --data-binary @photo.jpg${named ? ` (several models: send {"model":"${name}","image":"<base64>"} as JSON)` : ''}`,
  },
});
