/**
 * Text Embeddings Inference's text endpoints on a real server: /tokenize and /decode on an
 * embedder and a classifier (checked against @huggingface/tokenizers run here on the same
 * tokenizer.json), /info against the manifest, /similarity against cosines of /embed vectors
 * computed here, and /embed's normalize, truncate, truncation_direction and prompt_name
 * against vectors of token rows built here; and each bad input's coded error.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { compile } from '../../src/compiler/compile.js';
import type { Manifest } from '../../src/model/artifact.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import type { TextEmbedder } from '../../src/tasks/feature-extraction/model.js';
import { MAX_TEXTS_PER_REQUEST } from '../../src/tasks/limits.js';
import { loadModel } from '../../src/tasks/registry.js';
import { KILN_VERSION } from '../../src/version.js';
import { compileEmbedded, EMBEDDED_MODEL, tempDir } from '../fixtures/models.js';

const PROMPTS = { query: 'query: ', passage: 'passage: ' };
const MAX_LENGTH = 16;
/** The served limits /info must report: --max-client-batch, and a max batch below the artifact's. */
const MAX_CLIENT_BATCH = 64;
const SERVED_MAX_BATCH = 4;
/** Far more than 16 tokens, so truncation decides what the model sees. */
const LONG =
  'the film opens slowly but the second half is a gripping and moving story about a family that never gives up on each other';

/** Serves the embedder alone, so requests need not name it. */
let server: KilnServer;
let url: string;
/** Serves the raw embedder and the classifier: requests name theirs. */
let others: KilnServer;
let othersUrl: string;
let embedder: TextEmbedder;
let raw: TextEmbedder;
let manifests: { embedder: Manifest; classifier: Manifest };
let tokenizer: Tokenizer;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  // Two copies: a model is served under its folder's name.
  const folder = join(dir, 'embedder');
  await cp(EMBEDDED_MODEL, folder, { recursive: true });
  await writeFile(join(folder, 'config_sentence_transformers.json'), JSON.stringify({ prompts: PROMPTS }));
  const rawFolder = join(dir, 'raw');
  await cp(folder, rawFolder, { recursive: true });
  const embedded = await compile({
    source: folder,
    out: join(dir, 'embedder.kiln'),
    task: 'feature-extraction',
    maxLength: MAX_LENGTH,
  });
  const unnormalized = await compile({
    source: rawFolder,
    out: join(dir, 'raw.kiln'),
    task: 'feature-extraction',
    maxLength: MAX_LENGTH,
    normalize: false,
  });
  const classifier = await compileEmbedded(join(dir, 'classifier.kiln'));
  manifests = { embedder: embedded.manifest, classifier: classifier.manifest };
  tokenizer = new Tokenizer(JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')) as object, {});
  server = createServer({ port: 0, maxClientBatch: MAX_CLIENT_BATCH });
  url = await server.listen();
  embedder = (await loadModel(embedded.artifactDir, { replicas: 1, maxBatch: SERVED_MAX_BATCH })) as TextEmbedder;
  server.model.set(embedder);
  others = createServer({ port: 0 });
  othersUrl = await others.listen();
  raw = (await loadModel(unnormalized.artifactDir, { replicas: 1 })) as TextEmbedder;
  others.model.set(raw);
  others.model.set(await loadModel(classifier.artifactDir, { replicas: 1 }));
});
after(async () => {
  await server?.close();
  await others?.close();
});

const CLASSIFIER = 'sst2-distilbert-tiny';

const post = (path: string, body: unknown, base = url) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, ...error };
}

interface SimpleToken {
  id: number;
  text: string;
  special: boolean;
  start: number | null;
  stop: number | null;
}

function maxDelta(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, r) => row.map((v, c) => Math.abs(v - b[r]![c]!))));
}

const cosine = (a: number[], b: number[]) =>
  a.reduce((s, v, i) => s + v * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

describe('POST /tokenize and POST /decode', () => {
  for (const model of ['embedder', CLASSIFIER]) {
    test(`/tokenize (${model}) gives the tokenizer's ids, each token's text at its UTF-8 byte offsets, specials without offsets`, async () => {
      const texts = ['Héllo, wörld! unbelievably naïve', 'a good film'];
      const res = await post('/tokenize', { inputs: texts, model }, model === CLASSIFIER ? othersUrl : url);
      assert.equal(res.status, 200);
      const answer = (await res.json()) as SimpleToken[][];
      assert.equal(answer.length, 2);
      answer.forEach((tokens, i) => {
        const text = texts[i]!;
        assert.deepEqual(
          tokens.map((t) => t.id),
          tokenizer.encode(text).ids,
        );
        assert.deepEqual(
          tokens.filter((t) => t.special).map((t) => [t.text, t.start, t.stop]),
          [
            ['[CLS]', null, null],
            ['[SEP]', null, null],
          ],
        );
        const bytes = Buffer.from(text);
        let last = 0;
        for (const t of tokens.filter((x) => !x.special)) {
          assert.ok(t.start !== null && t.stop !== null, `${t.text} is placed`);
          assert.ok(t.start >= last && t.stop > t.start, 'in order, not overlapping');
          assert.equal(bytes.subarray(t.start, t.stop).toString(), t.text);
          last = t.stop;
        }
      });
      // "Héllo": 6 bytes (é is two), so "," starts at byte 6, not at character 5.
      assert.deepEqual(
        answer[0]!.slice(1, 3).map((t) => [t.text, t.start, t.stop]),
        [
          ['Héllo', 0, 6],
          [',', 6, 7],
        ],
      );
    });
  }

  test('/tokenize of one string answers one list; add_special_tokens false drops [CLS] and [SEP]; prompt_name puts the prompt first', async () => {
    const plain = (await (
      await post('/tokenize', { inputs: 'a good film', add_special_tokens: false })
    ).json()) as SimpleToken[][];
    assert.deepEqual(
      plain[0]!.map((t) => t.text),
      ['a', 'good', 'film'],
    );
    const prompted = (await (
      await post('/tokenize', { inputs: 'a good film', prompt_name: 'query' })
    ).json()) as SimpleToken[][];
    assert.deepEqual(
      prompted[0]!.map((t) => t.id),
      tokenizer.encode('query: a good film').ids,
    );
    assert.deepEqual(prompted[0]![1], {
      id: tokenizer.encode('query').ids[1],
      text: 'query',
      special: false,
      start: 0,
      stop: 5,
    });
  });

  test('/decode(/tokenize ids) gives the text back as the tokenizer normalizes it; skip_special_tokens false keeps [CLS] and [SEP]', async () => {
    const texts = ['A Good Film', 'the market fell sharply'];
    const tokens = (await (await post('/tokenize', { inputs: texts })).json()) as SimpleToken[][];
    const ids = tokens.map((row) => row.map((t) => t.id));
    const decoded = await post('/decode', { ids });
    assert.equal(decoded.status, 200);
    assert.deepEqual(await decoded.json(), ['a good film', 'the market fell sharply']);
    const single = await post('/decode', { ids: ids[0], skip_special_tokens: false, model: CLASSIFIER }, othersUrl);
    assert.deepEqual(await single.json(), ['[CLS] a good film [SEP]']);
  });

  test('bad inputs: an id outside the vocabulary, a mixed ids list, an unknown prompt, too many inputs, an empty list', async () => {
    const outside = await errorOf(
      await post('/decode', {
        ids: [
          [101, 102],
          [101, 30522],
        ],
      }),
    );
    assert.equal(outside.status, 400);
    assert.equal(outside.code, 'KILN_ERR_INPUT_TOKENS');
    assert.match(outside.message, /row 1 .*token 1 is 30522, outside the vocabulary's ids 0\.\.30521/);
    const mixed = await errorOf(await post('/decode', { ids: [101, [102]] }));
    assert.deepEqual([mixed.status, mixed.code], [400, 'KILN_ERR_HTTP_INVALID_BODY']);
    const prompt = await errorOf(await post('/tokenize', { inputs: 'hi', prompt_name: 'document' }));
    assert.equal(prompt.status, 400);
    assert.equal(prompt.code, 'KILN_ERR_INPUT_UNKNOWN_PROMPT');
    assert.match(prompt.message, /"document" is not a prompt of "embedder", which knows "query", "passage"/);
    const none = await errorOf(
      await post('/tokenize', { inputs: 'hi', prompt_name: 'query', model: CLASSIFIER }, othersUrl),
    );
    assert.equal(none.code, 'KILN_ERR_INPUT_UNKNOWN_PROMPT');
    assert.match(none.message, /which knows no prompts/);
    const many = await errorOf(await post('/tokenize', { inputs: Array(MAX_TEXTS_PER_REQUEST + 1).fill('a') }));
    assert.deepEqual([many.status, many.code], [413, 'KILN_ERR_HTTP_TOO_MANY_TEXTS']);
    const empty = await errorOf(await post('/tokenize', { inputs: [] }));
    assert.deepEqual([empty.status, empty.code], [400, 'KILN_ERR_HTTP_INVALID_BODY']);
  });
});

describe('GET /info', () => {
  test("an embedder's /info is its manifest's name, source hash, pooling and the server's real limits", async () => {
    const res = await fetch(`${url}/info`);
    assert.equal(res.status, 200);
    const info = (await res.json()) as Record<string, unknown>;
    const m = manifests.embedder;
    assert.deepEqual(info, {
      model_id: m.source.name,
      model_sha: m.source.sha256,
      model_dtype: 'float32',
      served_model_name: 'embedder',
      model_type: { embedding: { pooling: m.embedding!.pooling } },
      max_concurrent_requests: embedder.layout.maxQueue,
      max_input_length: MAX_LENGTH,
      // The scheduler's token budget: the served max batch, each padded to the longest bucket.
      max_batch_tokens: SERVED_MAX_BATCH * MAX_LENGTH,
      max_batch_requests: SERVED_MAX_BATCH,
      max_client_batch_size: MAX_CLIENT_BATCH,
      auto_truncate: true,
      tokenization_workers: 1,
      version: KILN_VERSION,
    });
    assert.match(String(info.model_sha), /^[0-9a-f]{64}$/);
    assert.ok(m.limits.maxBatch > SERVED_MAX_BATCH, 'the artifact allows more than is served');
    // max_client_batch_size is the cap requests meet: one more input is refused on every text route.
    const over = Array.from({ length: MAX_CLIENT_BATCH + 1 }, () => 'a');
    for (const [path, body] of [
      ['/embed', { inputs: over }],
      ['/v1/embeddings', { model: 'embedder', input: over }],
      ['/tokenize', { inputs: over }],
      ['/invocations', { inputs: over }],
    ] as const) {
      const refused = await errorOf(await post(path, body));
      assert.deepEqual([refused.status, refused.code], [413, 'KILN_ERR_HTTP_TOO_MANY_TEXTS'], path);
      assert.match(refused.message, new RegExp(`${MAX_CLIENT_BATCH + 1} inputs.*at most ${MAX_CLIENT_BATCH}`), path);
    }
    assert.equal((await post('/embed', { inputs: over.slice(1) })).status, 200);
    assert.deepEqual(m.embedding!.prompts, PROMPTS, "config_sentence_transformers.json's prompts are in the manifest");
  });

  test("a classifier's model_type lists its labels both ways; with several models and none named, /info says which exist", async () => {
    const info = (await (await fetch(`${othersUrl}/info?model=${CLASSIFIER}`)).json()) as { model_type: unknown };
    const labels = manifests.classifier.labels;
    assert.deepEqual(info.model_type, {
      classifier: {
        id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
        label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
      },
    });
    const unnamed = await errorOf(await fetch(`${othersUrl}/info`));
    assert.equal(unnamed.code, 'KILN_ERR_HTTP_MODEL_REQUIRED');
    assert.match(unnamed.message, /raw/);
  });
});

describe('POST /similarity and POST /embed options', () => {
  const embed = async (body: {
    inputs: string | string[];
    model?: string;
    [option: string]: unknown;
  }): Promise<number[][]> => {
    const res = await post('/embed', body, body.model === 'raw' ? othersUrl : url);
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as number[][];
  };

  test('/similarity answers the cosine of each sentence with the source, as computed here from /embed vectors', async () => {
    const sentences = ['a great movie', 'stocks dropped today', 'I enjoyed the film'];
    const [source, ...others] = await embed({ inputs: ['a good film', ...sentences] });
    const res = await post('/similarity', { inputs: { source_sentence: 'a good film', sentences } });
    assert.equal(res.status, 200);
    const scores = (await res.json()) as number[];
    assert.equal(scores.length, 3);
    scores.forEach((s, i) => {
      assert.ok(Math.abs(s - cosine(source!, others[i]!)) < 1e-5, `${s} vs ${cosine(source!, others[i]!)}`);
    });
    const prompted = (await (
      await post('/similarity', {
        inputs: { source_sentence: 'a good film', sentences },
        parameters: { prompt_name: 'query' },
      })
    ).json()) as number[];
    const [qs, ...qo] = await embed({ inputs: ['query: a good film', ...sentences.map((s) => `query: ${s}`)] });
    prompted.forEach((s, i) => {
      assert.ok(Math.abs(s - cosine(qs!, qo[i]!)) < 1e-5);
    });
    const empty = await errorOf(await post('/similarity', { inputs: { source_sentence: 'a', sentences: [] } }));
    assert.deepEqual([empty.status, empty.code], [400, 'KILN_ERR_HTTP_INVALID_BODY']);
  });

  test('/embed prompt_name embeds the prompt and the text; an unknown one is 400 naming the known ones', async () => {
    const [prompted] = await embed({ inputs: 'a good film', prompt_name: 'passage' });
    const [written] = await embed({ inputs: 'passage: a good film' });
    assert.ok(maxDelta([prompted!], [written!]) < 1e-6);
    const [plain] = await embed({ inputs: 'a good film' });
    assert.ok(maxDelta([prompted!], [plain!]) > 1e-3, 'the prompt changed the vector');
    const unknown = await errorOf(await post('/embed', { inputs: 'a', prompt_name: 'Query' }));
    assert.equal(unknown.code, 'KILN_ERR_INPUT_UNKNOWN_PROMPT');
    assert.match(unknown.message, /knows "query", "passage"/);
  });

  test('/embed truncation_direction Left keeps the end of a long text, Right its start; truncate false is 413 naming the limit', async () => {
    const bare = tokenizer.encode(LONG, { add_special_tokens: false }).ids;
    const [cls, sep] = [101, 102];
    const keep = MAX_LENGTH - 2;
    const [head, tail] = await embedder.embedTokens([
      { ids: [cls, ...bare.slice(0, keep), sep] },
      { ids: [cls, ...bare.slice(-keep), sep] },
    ]);
    const [right] = await embed({ inputs: LONG, truncation_direction: 'Right' });
    const [left] = await embed({ inputs: LONG, truncation_direction: 'Left' });
    const [byDefault] = await embed({ inputs: LONG });
    assert.ok(maxDelta([right!, left!, byDefault!], [head!, tail!, head!]) < 1e-5);
    const refused = await errorOf(await post('/embed', { inputs: ['short', LONG], truncate: false }));
    assert.equal(refused.status, 413);
    assert.equal(refused.code, 'KILN_ERR_INPUT_TOO_LONG');
    assert.match(refused.message, new RegExp(`"inputs\\[1\\]" has ${bare.length + 2} tokens .* at most ${MAX_LENGTH}`));
    const lower = await post('/embed', { inputs: LONG, truncation_direction: 'left' });
    assert.ok(maxDelta((await lower.json()) as number[][], [tail!]) < 1e-5, "TEI's lower-case spelling too");
    const wrong = await errorOf(await post('/embed', { inputs: LONG, truncation_direction: 'middle' }));
    assert.deepEqual([wrong.status, wrong.code], [400, 'KILN_ERR_HTTP_INVALID_BODY']);
  });

  test("/embed normalize: false on a normalizing artifact is 400 naming --no-normalize; on a raw artifact, false keeps raw and true or omitted (TEI's default) scales here", async () => {
    const refused = await errorOf(await post('/embed', { inputs: 'a good film', normalize: false }));
    assert.equal(refused.status, 400);
    assert.equal(refused.code, 'KILN_ERR_INPUT_ALREADY_NORMALIZED');
    assert.match(refused.message, /--no-normalize/);
    const [direct] = (await raw.embed(['a good film'])).map((e) => e.embedding);
    const norm = Math.hypot(...direct!);
    assert.ok(Math.abs(norm - 1) > 1e-3, 'the raw artifact does not normalize');
    const [rawVector] = await embed({ inputs: 'a good film', model: 'raw', normalize: false });
    assert.ok(maxDelta([rawVector!], [direct!]) < 1e-6);
    const unit = direct!.map((v) => v / norm);
    const [scaled] = await embed({ inputs: 'a good film', model: 'raw', normalize: true });
    const [byDefault] = await embed({ inputs: 'a good film', model: 'raw' });
    assert.ok(maxDelta([scaled!, byDefault!], [unit, unit]) < 1e-6);
    // dimensions with normalize: false keeps the first N raw values; otherwise they are rescaled.
    const [firstRaw] = await embed({ inputs: 'a good film', model: 'raw', normalize: false, dimensions: 8 });
    assert.ok(maxDelta([firstRaw!], [direct!.slice(0, 8)]) < 1e-6);
    const [firstUnit] = await embed({ inputs: 'a good film', model: 'raw', dimensions: 8 });
    assert.ok(Math.abs(Math.hypot(...firstUnit!) - 1) < 1e-6);
    // OpenAI's vectors are unit length, so /v1/embeddings answers the raw artifact's scaled too.
    const openAi = (await (await post('/v1/embeddings', { model: 'raw', input: 'a good film' }, othersUrl)).json()) as {
      data: Array<{ embedding: number[] }>;
    };
    assert.ok(maxDelta([openAi.data[0]!.embedding], [unit]) < 1e-6);
  });
});

test('with an API key, /tokenize, /decode and /info need it', async () => {
  const keyed = createServer({ port: 0, apiKey: 'k' });
  const keyedUrl = await keyed.listen();
  try {
    keyed.model.set(embedder);
    for (const [path, init] of [
      ['/tokenize', { method: 'POST', body: '{"inputs":"hi"}' }],
      ['/decode', { method: 'POST', body: '{"ids":[101]}' }],
      ['/info', { method: 'GET' }],
    ] as const) {
      const headers = { 'content-type': 'application/json' };
      const denied = await fetch(`${keyedUrl}${path}`, { ...init, headers });
      assert.equal(denied.status, 401, path);
      const allowed = await fetch(`${keyedUrl}${path}`, { ...init, headers: { ...headers, 'x-api-key': 'k' } });
      assert.equal(allowed.status, 200, path);
    }
  } finally {
    await keyed.close();
  }
});
