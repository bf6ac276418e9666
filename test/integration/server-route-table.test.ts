/**
 * Every inference route of the route table obeys the same two rules, whatever its body:
 * `--timeout-ms` (504 KILN_ERR_HTTP_TIMEOUT when the answer cannot come in time) and the early
 * refusal (429 with Retry-After, answered at the door before fastify sees the request) when its
 * model's queue is full; only a request whose body names its model among several reaches its
 * route before the scheduler refuses it (still 429 with Retry-After). Each route is tried with
 * each kind of body it takes: texts, JSON Lines, KServe BYTES, client-side tokens (INT64 and
 * INT32), images and image tensors, text pairs and rerank bodies, token-classification fields,
 * zero-shot and question bodies, on a text classifier, an embedding model, an image classifier, a
 * reranker, a token classifier, a zero-shot classifier and a question-answering model, alone,
 * and the first four served together. Gated replicas hold every
 * batch until the test opens them, so no answer can come in time and the queue stays full for
 * as long as the test needs: the outcomes follow from the order of events, not from timing.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import type { Task } from '../../src/model/artifact.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { ROUTES } from '../../src/server/route-table.js';
import { createServer, type KilnServer, type ServerOptions } from '../../src/server/server.js';
import { loadModel } from '../../src/tasks/registry.js';
import { type GatedReplicas, gatedReplicas, until, within } from '../fixtures/gated-replicas.js';
import { CNN, cnnFolder, pixels, png } from '../fixtures/image-models.js';
import { compileEmbedded, EMBEDDED_MODEL, randomFloats, tempDir } from '../fixtures/models.js';
import { randomWeights, tinyBertConfig, writeCheckpoint } from '../fixtures/random-checkpoint.js';

type Kind = 'classifier' | 'embedder' | 'image' | 'ranker' | 'tagger' | 'zeroshot' | 'qa';

const NAMES: Record<Kind, string> = {
  classifier: 'sst2-distilbert-tiny',
  embedder: 'tiny-encoder',
  image: 'tiny-resnet',
  ranker: 'tiny-cross-encoder',
  tagger: 'tiny-ner',
  zeroshot: 'tiny-nli',
  qa: 'tiny-qa',
};

const artifacts = {} as Record<Kind, string>;
let imagePng: Buffer;

/** A token encoder without a head: masked embeddings as `last_hidden_state` [batch, sequence, 8]. */
function tinyEncoder(): Uint8Array {
  const hidden = 8;
  const vocab = 30522;
  const g = new GraphBuilder('tiny-encoder');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const table = g.weight('embeddings', randomFloats(vocab * hidden, 7), [vocab, hidden]);
  const lastAxis = g.weight('axis_last', BigInt64Array.from([-1n]), [1]);
  const embedded = g.op('Gather', [table, ids], { axis: 0 });
  const mask3 = g.op('Unsqueeze', [g.op('Cast', [mask], { to: 1 }), lastAxis]);
  g.op('Mul', [embedded, mask3], undefined, { output: 'last_hidden_state' });
  g.output('last_hidden_state', 'float', ['batch', 'sequence', hidden]);
  return g.toBytes({ '': 17 });
}

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifacts.classifier = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
  const encoder = join(dir, NAMES.embedder);
  await mkdir(join(encoder, 'onnx'), { recursive: true });
  await writeFile(join(encoder, 'onnx', 'model.onnx'), tinyEncoder());
  await writeFile(
    join(encoder, 'config.json'),
    JSON.stringify({ architectures: ['BertModel'], model_type: 'bert', max_position_embeddings: 512 }),
  );
  await cp(join(EMBEDDED_MODEL, 'tokenizer.json'), join(encoder, 'tokenizer.json'));
  artifacts.embedder = (
    await compile({ source: encoder, out: join(dir, 'encoder.kiln'), task: 'feature-extraction', maxLength: 32 })
  ).artifactDir;
  artifacts.image = (
    await compile({ source: await cnnFolder(dir, NAMES.image), out: join(dir, 'cnn.kiln') })
  ).artifactDir;
  imagePng = await png(pixels(CNN.size, CNN.size, 1), CNN.size, CNN.size);
  const ranker = tinyBertConfig(['LABEL_0']);
  const checkpoint = await writeCheckpoint(join(dir, NAMES.ranker), ranker, randomWeights(ranker, 1));
  artifacts.ranker = (await compile({ source: checkpoint, out: join(dir, 'ranker.kiln'), maxLength: 16 })).artifactDir;
  const tagger = tinyBertConfig(['O', 'B-PER', 'I-PER'], { architectures: ['BertForTokenClassification'] });
  const taggerCheckpoint = await writeCheckpoint(join(dir, NAMES.tagger), tagger, randomWeights(tagger, 2));
  artifacts.tagger = (
    await compile({ source: taggerCheckpoint, out: join(dir, 'tagger.kiln'), maxLength: 16 })
  ).artifactDir;
  const nli = tinyBertConfig(['contradiction', 'entailment', 'neutral']);
  const nliCheckpoint = await writeCheckpoint(join(dir, NAMES.zeroshot), nli, randomWeights(nli, 2));
  const qa = { ...tinyBertConfig([]), architectures: ['BertForQuestionAnswering'] };
  const qaCheckpoint = await writeCheckpoint(join(dir, NAMES.qa), qa, randomWeights(qa, 3));
  artifacts.qa = (await compile({ source: qaCheckpoint, out: join(dir, 'qa.kiln'), maxLength: 16 })).artifactDir;
  artifacts.zeroshot = (
    await compile({ source: nliCheckpoint, out: join(dir, 'nli.kiln'), maxLength: 16 })
  ).artifactDir;
});

/** One request a route takes. */
interface Request {
  path: string;
  contentType: string;
  body: BodyInit;
  headers?: Record<string, string>;
}

interface Case {
  /** What the test names. */
  name: string;
  /** The route's pattern in the route table. */
  route: string;
  model: Kind;
  request: (name: string) => Request;
  /** Whether the door can tell the request's model before its body is read (false: named in the body among several). */
  atTheDoor?: boolean;
}

const json = (path: string, body: object, headers?: Record<string, string>): Request => ({
  path,
  contentType: 'application/json',
  body: JSON.stringify(body),
  headers,
});

const v2 = (name: string, inputs: object[], version?: string): Request =>
  json(`/v2/models/${name}${version === undefined ? '' : `/versions/${version}`}/infer`, { inputs });

/** One preprocessed image as KServe's FP32 [1, 3, H, W] input. */
const imageTensor = () => ({
  name: 'pixel_values',
  datatype: 'FP32',
  shape: [1, 3, CNN.size, CNN.size],
  data: Array.from(randomFloats(3 * CNN.size * CNN.size, 5)),
});
const bytesText = (texts: string[]) => ({ name: 'text', datatype: 'BYTES', shape: [texts.length], data: texts });
const bytesQuery = (query: string) => ({ name: 'query', datatype: 'BYTES', shape: [1], data: [query] });
const qaTensors = () => [
  { name: 'question', datatype: 'BYTES', shape: [1], data: ['what film?'] },
  { name: 'context', datatype: 'BYTES', shape: [1], data: ['a fine film'] },
];
const tokens = (datatype: string) => [
  { name: 'input_ids', datatype, shape: [2, 4], data: [101, 2204, 3185, 102, 101, 102, 0, 0] },
  { name: 'attention_mask', datatype, shape: [2, 4], data: [1, 1, 1, 1, 1, 1, 0, 0] },
];

const CASES: Case[] = [
  {
    name: 'POST /predict {"text"}',
    route: '/predict',
    model: 'classifier',
    request: () => json('/predict', { text: 'a fine film' }),
  },
  {
    name: 'POST /predict {"texts"}',
    route: '/predict',
    model: 'classifier',
    request: () => json('/predict', { texts: ['a fine film', 'a dull one'] }),
  },
  {
    name: 'POST /invocations application/json (classifier)',
    route: '/invocations',
    model: 'classifier',
    request: () => json('/invocations', { inputs: ['a fine film', 'a dull one'] }),
  },
  {
    name: 'POST /invocations application/jsonlines',
    route: '/invocations',
    model: 'classifier',
    request: () => ({
      path: '/invocations',
      contentType: 'application/jsonlines',
      body: '{"inputs": "a fine film"}\n"a dull one"\n',
    }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES texts (classifier)',
    route: '/v2/models/:name/infer',
    model: 'classifier',
    request: (name) => v2(name, [bytesText(['a fine film'])]),
  },
  {
    name: 'POST /v2/models/{name}/infer, INT64 token tensors (classifier)',
    route: '/v2/models/:name/infer',
    model: 'classifier',
    request: (name) => v2(name, tokens('INT64')),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, INT32 token tensors (classifier)',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'classifier',
    request: (name) => v2(name, tokens('INT32'), '1'),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, BYTES texts (classifier)',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'classifier',
    request: (name) => v2(name, [bytesText(['a fine film'])], '1'),
  },
  {
    name: 'POST /v1/embeddings',
    route: '/v1/embeddings',
    model: 'embedder',
    request: (name) => json('/v1/embeddings', { model: name, input: ['a fine film', 'a dull one'] }),
  },
  { name: 'POST /embed', route: '/embed', model: 'embedder', request: () => json('/embed', { inputs: 'a fine film' }) },
  {
    name: 'POST /embed with TEI options',
    route: '/embed',
    model: 'embedder',
    request: () => json('/embed', { inputs: ['a fine film'], truncate: false, truncation_direction: 'Left' }),
  },
  {
    name: 'POST /similarity',
    route: '/similarity',
    model: 'embedder',
    request: () => json('/similarity', { inputs: { source_sentence: 'a fine film', sentences: ['a dull one'] } }),
  },
  {
    name: 'POST /invocations application/json (embedder)',
    route: '/invocations',
    model: 'embedder',
    request: () => json('/invocations', { inputs: 'a fine film' }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES texts (embedder)',
    route: '/v2/models/:name/infer',
    model: 'embedder',
    request: (name) => v2(name, [bytesText(['a fine film'])]),
  },
  {
    name: 'POST /v2/models/{name}/infer, INT64 token tensors (embedder)',
    route: '/v2/models/:name/infer',
    model: 'embedder',
    request: (name) => v2(name, tokens('INT64')),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, BYTES texts (embedder)',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'embedder',
    request: (name) => v2(name, [bytesText(['a fine film'])], '1'),
  },
  {
    name: 'POST /predict {"image"}',
    route: '/predict',
    model: 'image',
    request: () => json('/predict', { image: imagePng.toString('base64') }),
  },
  {
    name: 'POST /predict with an image/png body',
    route: '/predict',
    model: 'image',
    request: () => ({ path: '/predict', contentType: 'image/png', body: new Uint8Array(imagePng) }),
  },
  {
    name: 'POST /invocations with an application/x-image body',
    route: '/invocations',
    model: 'image',
    request: () => ({ path: '/invocations', contentType: 'application/x-image', body: new Uint8Array(imagePng) }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES base64 images',
    route: '/v2/models/:name/infer',
    model: 'image',
    request: (name) =>
      v2(name, [{ name: 'image', datatype: 'BYTES', shape: [1], data: [imagePng.toString('base64')] }]),
  },
  {
    name: 'POST /v2/models/{name}/infer, an FP32 image tensor',
    route: '/v2/models/:name/infer',
    model: 'image',
    request: (name) => v2(name, [imageTensor()]),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, an FP32 image tensor',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'image',
    request: (name) => v2(name, [imageTensor()], '1'),
  },
  {
    name: 'POST /predict {"texts": [{"text", "text_pair"}]} (ranker)',
    route: '/predict',
    model: 'ranker',
    request: () => json('/predict', { texts: [{ text: 'a fine film', text_pair: 'a dull one' }] }),
  },
  {
    name: 'POST /rerank',
    route: '/rerank',
    model: 'ranker',
    request: () => json('/rerank', { query: 'a fine film', texts: ['a dull one', 'a good one'] }),
  },
  {
    name: 'POST /invocations {"query", "texts"} (ranker)',
    route: '/invocations',
    model: 'ranker',
    request: () => json('/invocations', { query: 'a fine film', texts: ['a dull one', 'a good one'] }),
  },
  {
    name: 'POST /v1/rerank',
    route: '/v1/rerank',
    model: 'ranker',
    request: (name) =>
      json('/v1/rerank', { model: name, query: 'a fine film', documents: ['a dull one', { text: 'a good one' }] }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES query and texts (ranker)',
    route: '/v2/models/:name/infer',
    model: 'ranker',
    request: (name) => v2(name, [bytesQuery('a fine film'), bytesText(['a dull one', 'a good one'])]),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, INT64 token tensors (ranker)',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'ranker',
    request: (name) => v2(name, tokens('INT64'), '1'),
  },
  {
    name: 'POST /predict {"text", "aggregation_strategy", "redact"} (token classifier)',
    route: '/predict',
    model: 'tagger',
    request: () => json('/predict', { text: 'ada went to paris', aggregation_strategy: 'simple', redact: true }),
  },
  {
    name: 'POST /invocations {"inputs", "parameters"} (token classifier)',
    route: '/invocations',
    model: 'tagger',
    request: () =>
      json('/invocations', { inputs: ['ada went to paris'], parameters: { aggregation_strategy: 'first' } }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES texts (token classifier)',
    route: '/v2/models/:name/infer',
    model: 'tagger',
    request: (name) => v2(name, [bytesText(['ada went to paris'])]),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, BYTES texts and aggregation_strategy (token classifier)',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'tagger',
    request: (name) =>
      v2(
        name,
        [
          bytesText(['ada went to paris']),
          { name: 'aggregation_strategy', datatype: 'BYTES', shape: [1], data: ['max'] },
        ],
        '1',
      ),
  },
  {
    name: 'POST /predict {"text", "candidate_labels"} (zero-shot)',
    route: '/predict',
    model: 'zeroshot',
    request: () => json('/predict', { text: 'a fine film', candidate_labels: ['good', 'bad'] }),
  },
  {
    name: 'POST /invocations {"text", "candidate_labels", "multi_label"} (zero-shot)',
    route: '/invocations',
    model: 'zeroshot',
    request: () => json('/invocations', { text: 'a fine film', candidate_labels: 'good, bad', multi_label: true }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES text and candidate_labels (zero-shot)',
    route: '/v2/models/:name/infer',
    model: 'zeroshot',
    request: (name) =>
      v2(name, [
        bytesText(['a fine film']),
        { name: 'candidate_labels', datatype: 'BYTES', shape: [2], data: ['good', 'bad'] },
      ]),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, BYTES text and candidate_labels (zero-shot)',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'zeroshot',
    request: (name) =>
      v2(
        name,
        [bytesText(['a fine film']), { name: 'candidate_labels', datatype: 'BYTES', shape: [1], data: ['good'] }],
        '1',
      ),
  },
  {
    name: 'POST /predict {"question", "context"} (question answering)',
    route: '/predict',
    model: 'qa',
    request: () => json('/predict', { question: 'what film?', context: 'a fine film', top_k: 2 }),
  },
  {
    name: 'POST /invocations {"question", "context"} (question answering)',
    route: '/invocations',
    model: 'qa',
    request: () => json('/invocations', { question: 'what film?', context: 'a fine film' }),
  },
  {
    name: 'POST /v2/models/{name}/infer, BYTES question and context',
    route: '/v2/models/:name/infer',
    model: 'qa',
    request: (name) => v2(name, qaTensors()),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, BYTES question and context',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'qa',
    request: (name) => v2(name, qaTensors(), '1'),
  },
];

/** The same routes on a server with all four models, where a request must name its model. */
const SHARED_CASES: Case[] = [
  {
    name: 'POST /invocations naming the model in x-amzn-sagemaker-target-model',
    route: '/invocations',
    model: 'classifier',
    request: (name) =>
      json('/invocations', { inputs: 'a fine film' }, { 'x-amzn-sagemaker-target-model': `${name}.tar.gz` }),
  },
  {
    name: 'POST /v2/models/{name}/infer, INT64 token tensors (embedder)',
    route: '/v2/models/:name/infer',
    model: 'embedder',
    request: (name) => v2(name, tokens('INT64')),
  },
  {
    name: 'POST /v2/models/{name}/versions/1/infer, BYTES base64 images',
    route: '/v2/models/:name/versions/:version/infer',
    model: 'image',
    request: (name) =>
      v2(name, [{ name: 'image', datatype: 'BYTES', shape: [1], data: [imagePng.toString('base64')] }], '1'),
  },
  {
    name: 'POST /predict naming the model in the body',
    route: '/predict',
    model: 'classifier',
    request: (name) => json('/predict', { text: 'a fine film', model: name }),
    atTheDoor: false,
  },
  {
    name: 'POST /v1/embeddings naming the model in the body',
    route: '/v1/embeddings',
    model: 'embedder',
    request: (name) => json('/v1/embeddings', { model: name, input: 'a fine film' }),
    atTheDoor: false,
  },
  {
    name: 'POST /v1/rerank naming the model in the body',
    route: '/v1/rerank',
    model: 'ranker',
    request: (name) => json('/v1/rerank', { model: name, query: 'a fine film', documents: ['a dull one'] }),
    atTheDoor: false,
  },
  {
    name: 'POST /rerank naming the model in the body',
    route: '/rerank',
    model: 'ranker',
    request: (name) => json('/rerank', { model: name, query: 'a fine film', texts: ['a dull one'] }),
    atTheDoor: false,
  },
];

/** Every wait in these tests has a deadline: a request that is never answered fails its test. */
const REQUEST_DEADLINE_MS = 20_000;

function send(url: string, request: Request): Promise<Response> {
  return fetch(`${url}${request.path}`, {
    method: 'POST',
    headers: { 'content-type': request.contentType, ...request.headers },
    body: request.body,
    signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
  });
}

/** A request that occupies `kind`'s replica or queue: one input, its model named in the path. */
function occupying(kind: Kind): Request {
  if (kind === 'image')
    return v2(NAMES.image, [{ name: 'image', datatype: 'BYTES', shape: [1], data: [imagePng.toString('base64')] }]);
  if (kind === 'ranker') return v2(NAMES.ranker, [bytesQuery('occupying'), bytesText(['the replica'])]);
  if (kind === 'qa') return v2(NAMES.qa, qaTensors());
  if (kind === 'zeroshot')
    return v2(NAMES.zeroshot, [
      bytesText(['occupying the replica']),
      { name: 'candidate_labels', datatype: 'BYTES', shape: [1], data: ['busy'] },
    ]);
  return v2(NAMES[kind], [bytesText(['occupying the replica'])]);
}

/** An error answer's code and message (KServe's body has only the message; the header has the code). */
async function errorOf(res: Response): Promise<{ code: string | null; message: string }> {
  const code = res.headers.get('kiln-error-code');
  const body = (await res.json()) as { error: string | { code: string; message: string } };
  if (typeof body.error === 'string') {
    assert.ok(res.url.includes('/v2/'), 'only KServe routes answer {"error": "…"}');
    return { code, message: body.error };
  }
  assert.equal(body.error.code, code, 'the body and the header agree');
  return { code, message: body.error.message };
}

interface Served {
  server: KilnServer;
  url: string;
  gates: Map<Kind, GatedReplicas>;
  /** Requests fastify saw, by path (a request refused at the door is not among them). */
  seen: Map<string, number>;
  close: () => Promise<void>;
}

/** A server with `kinds` loaded on gated replicas, one replica each, no batch sent ahead. */
async function serve(kinds: readonly Kind[], options: ServerOptions, maxQueue?: number): Promise<Served> {
  const server = createServer({ port: 0, ...options });
  const seen = new Map<string, number>();
  server.app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    seen.set(path, (seen.get(path) ?? 0) + 1);
  });
  const url = await server.listen();
  const gates = new Map<Kind, GatedReplicas>();
  for (const kind of kinds) {
    const gate = gatedReplicas(join(artifacts[kind], 'model.onnx'));
    gates.set(kind, gate);
    server.model.set(
      await loadModel(artifacts[kind], { replicas: 1, pipeline: 1, maxQueue, replicaFactory: gate.factory }),
    );
  }
  return {
    server,
    url,
    gates,
    seen,
    close: async () => {
      for (const gate of gates.values()) gate.open();
      await server.close();
    },
  };
}

function timeoutTests(title: string, kinds: readonly Kind[], cases: readonly Case[]): void {
  describe(title, () => {
    let served: Served;
    before(async () => {
      served = await serve(kinds, { timeoutMs: 50 });
    });
    after(() => served?.close());

    for (const c of cases) {
      test(`${c.name}: its batch held past --timeout-ms 50 → 504 KILN_ERR_HTTP_TIMEOUT`, async () => {
        const res = await send(served.url, c.request(NAMES[c.model]));
        assert.equal(res.status, 504);
        const { code, message } = await errorOf(res);
        assert.equal(code, 'KILN_ERR_HTTP_TIMEOUT');
        assert.match(message, /50 ms \(--timeout-ms\)/);
      });
    }
  });
}

function refusalTests(title: string, kinds: readonly Kind[], cases: readonly Case[]): void {
  describe(title, () => {
    let served: Served;
    const held: Array<Promise<Response>> = [];
    before(async () => {
      served = await serve(kinds, {}, 1);
      // Per model: one request on its replica (held at the gate), one in its queue (max-queue 1: full).
      for (const kind of kinds) {
        const model = served.server.model.ready(NAMES[kind]);
        held.push(send(served.url, occupying(kind)));
        await within(served.gates.get(kind)!.running, `the first ${kind} batch`);
        held.push(send(served.url, occupying(kind)));
        await until(() => model.stats().queueDepth === 1, `a queued ${kind} request`);
      }
    });
    after(() => served?.close());

    for (const c of cases) {
      const door = c.atTheDoor !== false;
      test(`${c.name}: its model's queue full → 429 KILN_ERR_QUEUE_FULL with Retry-After, ${door ? 'refused at the door' : 'refused by the scheduler (the body names the model)'}`, async () => {
        const request = c.request(NAMES[c.model]);
        const seen = served.seen.get(request.path) ?? 0;
        const rejected = served.server.model.ready(NAMES[c.model]).stats().rejected;
        const res = await send(served.url, request);
        assert.equal(res.status, 429);
        assert.equal(res.headers.get('retry-after'), '1');
        const { code, message } = await errorOf(res);
        assert.equal(code, 'KILN_ERR_QUEUE_FULL');
        assert.match(message, /--max-queue/);
        assert.ok(
          served.server.model.ready(NAMES[c.model]).stats().rejected > rejected,
          "counted as its model's refusal",
        );
        assert.equal(
          (served.seen.get(request.path) ?? 0) - seen,
          door ? 0 : 1,
          door ? 'fastify never saw the refused request' : 'the request reached its route',
        );
      });
    }

    test('once the replicas are let go, every request that was let in is answered', async () => {
      for (const gate of served.gates.values()) gate.open();
      assert.deepEqual(
        (await Promise.all(held)).map((r) => r.status),
        held.map(() => 200),
      );
    });
  });
}

const TASK_OF: Record<Kind, Task> = {
  classifier: 'text-classification',
  embedder: 'feature-extraction',
  image: 'image-classification',
  ranker: 'text-ranking',
  tagger: 'token-classification',
  zeroshot: 'zero-shot-classification',
  qa: 'question-answering',
};

test('every inference route of the route table is tried below with a model of each task it serves', () => {
  const inference = ROUTES.filter((r) => r.inference !== undefined);
  assert.ok(inference.length >= 6, 'the table lists the inference routes');
  for (const route of inference) {
    for (const task of route.inference!.tasks) {
      assert.ok(
        CASES.some((c) => c.route === route.url && TASK_OF[c.model] === task),
        `no case for ${route.method} ${route.url} with a ${task} model`,
      );
    }
  }
  for (const c of [...CASES, ...SHARED_CASES])
    assert.ok(
      inference.some((r) => r.url === c.route),
      `${c.name}: ${c.route} is not an inference route of the table`,
    );
});

for (const kind of ['classifier', 'embedder', 'image', 'ranker', 'tagger', 'zeroshot', 'qa'] as const) {
  const cases = CASES.filter((c) => c.model === kind);
  timeoutTests(`--timeout-ms on every inference route (${kind})`, [kind], cases);
  refusalTests(`early refusal on every inference route (${kind})`, [kind], cases);
}
timeoutTests('--timeout-ms with four models served', ['classifier', 'embedder', 'image', 'ranker'], SHARED_CASES);
refusalTests('early refusal with four models served', ['classifier', 'embedder', 'image', 'ranker'], SHARED_CASES);
