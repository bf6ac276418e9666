/**
 * KServe v2 / Open Inference Protocol routes on port 0 with real HTTP: metadata, health,
 * inference with a BYTES text input, and errors in the protocol's `{"error": "…"}` shape with
 * Triton's statuses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer } from '../../src/server/server.js';
import type { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, REPO, servedWithReference, tempDir } from '../fixtures/models.js';

const MODEL = 'sst2-distilbert-tiny';
let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: Array<string | number>;
}

/** A KServe error: `{"error": "<message>"}` and nothing else, the code in the kiln-error-code header. */
async function kserveError(res: Response): Promise<{ status: number; code: string | null; message: string }> {
  const body = (await res.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['error'], 'the KServe error shape');
  assert.equal(typeof body.error, 'string');
  return { status: res.status, code: res.headers.get('kiln-error-code'), message: body.error as string };
}

describe('KServe v2 before the model is loaded', () => {
  test('live 200, ready 503, inference 503 KILN_ERR_HTTP_NOT_READY in the {"error"} shape', async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      const live = await fetch(`${url}/v2/health/live`);
      assert.equal(live.status, 200);
      assert.deepEqual(await live.json(), { live: true });
      const ready = await fetch(`${url}/v2/health/ready`);
      assert.equal(ready.status, 503);
      assert.deepEqual(await ready.json(), { ready: false });
      const modelReady = await fetch(`${url}/v2/models/${MODEL}/ready`);
      assert.equal(modelReady.status, 503);
      assert.deepEqual(await modelReady.json(), { name: MODEL, ready: false });
      const infer = await kserveError(
        await postJson(`${url}/v2/models/${MODEL}/infer`, {
          inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['hi'] }],
        }),
      );
      assert.deepEqual([infer.status, infer.code], [503, 'KILN_ERR_HTTP_NOT_READY']);
    } finally {
      await server.close();
    }
  });
});

describe('KServe v2 with the embedded model', () => {
  let url: string;
  let reference: TextClassifier;

  let close: () => Promise<void>;

  before(async () => {
    ({ url, reference, close } = await servedWithReference(artifact));
  });
  after(() => close());

  test('GET /v2 → server metadata: name kiln, the package version, no extensions', async () => {
    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    assert.deepEqual(await (await fetch(`${url}/v2`)).json(), { name: 'kiln', version, extensions: [] });
  });

  test('GET /v2/health/ready and /v2/models/{name}/ready → 200 once loaded', async () => {
    const ready = await fetch(`${url}/v2/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { ready: true });
    for (const path of [`/v2/models/${MODEL}/ready`, `/v2/models/${MODEL}/versions/1/ready`]) {
      const res = await fetch(`${url}${path}`);
      assert.equal(res.status, 200, path);
      assert.deepEqual(await res.json(), { name: MODEL, ready: true });
    }
  });

  test('GET /v2/models/{name} → model metadata with the protocol field names', async () => {
    const expected = {
      name: MODEL,
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
      outputs: [
        { name: 'label', datatype: 'BYTES', shape: [-1] },
        { name: 'score', datatype: 'FP32', shape: [-1] },
        { name: 'logits', datatype: 'FP32', shape: [-1, 2] },
      ],
    };
    assert.deepEqual(await (await fetch(`${url}/v2/models/${MODEL}`)).json(), expected);
    assert.deepEqual(await (await fetch(`${url}/v2/models/${MODEL}/versions/1`)).json(), expected);
  });

  test('unknown model or version → 404 KILN_ERR_HTTP_V2_UNKNOWN_MODEL naming the served model', async () => {
    for (const [method, path] of [
      ['GET', '/v2/models/bert'],
      ['GET', '/v2/models/bert/ready'],
      ['GET', `/v2/models/${MODEL}/versions/2`],
      ['POST', '/v2/models/bert/infer'],
    ] as const) {
      const res =
        method === 'GET'
          ? await fetch(`${url}${path}`)
          : await postJson(`${url}${path}`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['x'] }] });
      const err = await kserveError(res);
      assert.deepEqual([err.status, err.code], [404, 'KILN_ERR_HTTP_V2_UNKNOWN_MODEL'], path);
      assert.match(err.message, new RegExp(`serves "${MODEL}"`));
    }
  });

  test('POST /v2/models/{name}/infer with a BYTES input [n] → label, score and logits equal to the classifier, id echoed', async () => {
    const texts = ['a charming and moving film', 'awful, boring and far too long', 'the worst'];
    const res = await postJson(`${url}/v2/models/${MODEL}/infer`, {
      id: 'req-42',
      parameters: { anything: 1 },
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: texts }],
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      model_name: string;
      model_version: string;
      id: string;
      outputs: OutputTensor[];
    };
    const expected = await reference.classify(texts);
    assert.deepEqual(body, {
      model_name: MODEL,
      model_version: '1',
      id: 'req-42',
      outputs: [
        { name: 'label', datatype: 'BYTES', shape: [3], data: expected.map((p) => p.label) },
        { name: 'score', datatype: 'FP32', shape: [3], data: expected.map((p) => p.score) },
        { name: 'logits', datatype: 'FP32', shape: [3, 2], data: expected.flatMap((p) => p.logits) },
      ],
    });
    assert.deepEqual(body.outputs[0]!.data, ['POSITIVE', 'NEGATIVE', 'NEGATIVE']);
  });

  test('shape [n, 1] with nested data, and requested outputs: only those come back, in the order asked; no id, none echoed', async () => {
    const res = await postJson(`${url}/v2/models/${MODEL}/versions/1/infer`, {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 1], data: [['I loved it'], ['I hated it']] }],
      outputs: [{ name: 'score' }, { name: 'label' }],
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id?: string; outputs: OutputTensor[] };
    assert.equal('id' in body, false);
    assert.deepEqual(
      body.outputs.map((o) => [o.name, o.shape]),
      [
        ['score', [2, 1]],
        ['label', [2, 1]],
      ],
    );
    const expected = await reference.classify(['I loved it', 'I hated it']);
    assert.deepEqual(
      body.outputs[1]!.data,
      expected.map((p) => p.label),
    );
  });

  test('POST /v2/models/{name}/infer with INT64 input_ids and attention_mask → the same logits as the text, padding ignored', async () => {
    // "I loved it" and "awful" as bert-base-uncased ids, the second padded to the first's length.
    const rows = [
      [101, 1045, 3866, 2009, 102],
      [101, 9643, 102, 0, 0],
    ];
    const res = await postJson(`${url}/v2/models/${MODEL}/infer`, {
      id: 'tok',
      inputs: [
        { name: 'input_ids', datatype: 'INT64', shape: [2, 5], data: rows.flat() },
        { name: 'attention_mask', datatype: 'INT64', shape: [2, 5], data: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0] },
      ],
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; outputs: OutputTensor[] };
    assert.equal(body.id, 'tok');
    const expected = await reference.classify(['I loved it', 'awful']);
    const logits = body.outputs.find((o) => o.name === 'logits')!;
    assert.deepEqual(logits.shape, [2, 2]);
    (logits.data as number[]).forEach((v, i) => {
      assert.ok(Math.abs(v - expected[Math.floor(i / 2)]!.logits[i % 2]!) < 1e-5);
    });
    assert.deepEqual(
      body.outputs.find((o) => o.name === 'label')!.data,
      expected.map((p) => p.label),
    );
  });

  const badRequests: Array<[name: string, body: unknown, status: number, code: string, message: RegExp]> = [
    [
      'a token id outside the vocabulary',
      {
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [1, 3], data: [101, 99999, 102] },
          { name: 'attention_mask', datatype: 'INT64', shape: [1, 3], data: [1, 1, 1] },
        ],
      },
      400,
      'KILN_ERR_INPUT_TOKENS',
      /row 0 .*token 1 is 99999, outside the vocabulary's ids 0\.\.30521/,
    ],
    [
      'a mask with a hole',
      {
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [1, 3], data: [101, 2023, 102] },
          { name: 'attention_mask', datatype: 'INT64', shape: [1, 3], data: [1, 0, 1] },
        ],
      },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /row 0 of "attention_mask" is not 1s followed by 0s/,
    ],
    [
      'input_ids without a mask',
      { inputs: [{ name: 'input_ids', datatype: 'INT64', shape: [1, 3], data: [101, 2023, 102] }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /need both "input_ids" and "attention_mask"/,
    ],
    [
      'a token type outside the table (it would fail the whole batch)',
      {
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [1, 3], data: [101, 2000, 102] },
          { name: 'attention_mask', datatype: 'INT64', shape: [1, 3], data: [1, 1, 1] },
          { name: 'token_type_ids', datatype: 'INT64', shape: [1, 3], data: [0, 5, 0] },
        ],
      },
      400,
      'KILN_ERR_INPUT_TOKENS',
      /token_type_ids 1 is 5, outside the token types 0\.\.1/,
    ],
    [
      'a row longer than max length',
      {
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [1, 130], data: Array.from({ length: 130 }, () => 1000) },
          { name: 'attention_mask', datatype: 'INT64', shape: [1, 130], data: Array.from({ length: 130 }, () => 1) },
        ],
      },
      400,
      'KILN_ERR_INPUT_TOKENS',
      /130 tokens; a row needs 1 to 128/,
    ],
    [
      'an FP32 input',
      { inputs: [{ name: 'text', datatype: 'FP32', shape: [1], data: [1.5] }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /datatype "FP32"; the text input is BYTES/,
    ],
    [
      'two inputs',
      {
        inputs: [
          { name: 'a', datatype: 'BYTES', shape: [1], data: ['x'] },
          { name: 'b', datatype: 'BYTES', shape: [1], data: ['y'] },
        ],
      },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /one input, "text", but the request has 2/,
    ],
    [
      'a shape that does not match the data',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: ['x', 'y'] }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /shape \[3\] \(3 elements\) but 2 data elements/,
    ],
    [
      'a [2, 2] shape',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2, 2], data: ['a', 'b', 'c', 'd'] }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /shape \[n\] or \[n, 1\]/,
    ],
    [
      'a number in BYTES data',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['x', 7] }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /element 1 of input "text" is 7/,
    ],
    [
      'an unknown output',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['x'] }], outputs: [{ name: 'probabilities' }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /no output "probabilities"; its outputs are label, score, logits/,
    ],
    ['no inputs field', { id: '1' }, 400, 'KILN_ERR_HTTP_V2_INVALID_REQUEST', /must have required property 'inputs'/],
    [
      'an unknown field in an input',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['x'], contents: {} }] },
      400,
      'KILN_ERR_HTTP_V2_INVALID_REQUEST',
      /unknown field "contents"/,
    ],
    ['broken JSON', '{"inputs": [', 400, 'KILN_ERR_HTTP_V2_INVALID_REQUEST', /not valid JSON/],
    [
      'an empty text',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [' '] }] },
      400,
      'KILN_ERR_INPUT_EMPTY_TEXT',
      /element 0 of input "text" is empty/,
    ],
    [
      'too many texts',
      { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1025], data: Array.from({ length: 1025 }, () => 'x') }] },
      413,
      'KILN_ERR_HTTP_TOO_MANY_TEXTS',
      /at most 1024/,
    ],
  ];
  for (const [name, body, status, code, message] of badRequests) {
    test(`infer with ${name} → ${status} ${code} as {"error": "…"}`, async () => {
      const err = await kserveError(await postJson(`${url}/v2/models/${MODEL}/infer`, body));
      assert.deepEqual([err.status, err.code], [status, code]);
      assert.match(err.message, message);
    });
  }

  test('an unknown /v2 route → 404 in the {"error"} shape; the server keeps serving', async () => {
    const err = await kserveError(await fetch(`${url}/v2/repository/index`));
    assert.deepEqual([err.status, err.code], [404, 'KILN_ERR_HTTP_NOT_FOUND']);
    assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
  });
});
