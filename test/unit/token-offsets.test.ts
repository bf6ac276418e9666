/**
 * TextTokenizer.spannedTokens and alignPieces: every token's place in the text as UTF-16
 * offsets, with accents, emoji and CJK, for a WordPiece tokenizer (the embedded model's, BERT
 * uncased: lower-cases and strips accents) and a byte-level BPE one (RoBERTa's kind, built here:
 * an emoji or a CJK character is several byte tokens).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { alignPieces, SAME_PIECE } from '../../src/model/token-spans.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { EMBEDDED_MODEL } from '../fixtures/models.js';

const slices = (text: string, spans: ReadonlyArray<{ start: number; end: number } | null>): Array<string | null> =>
  spans.map((s) => (s === null ? null : text.slice(s.start, s.end)));

const ALIGN_CASES: Array<{
  name: string;
  text: string;
  pieces: Array<string | null | typeof SAME_PIECE>;
  expected: Array<string | null>;
}> = [
  {
    name: 'folded pieces find accented and upper-case text',
    text: 'Zoë MÜLLER',
    pieces: ['zoe', 'muller'],
    expected: ['Zoë', 'MÜLLER'],
  },
  {
    name: 'an unknown token takes the visible text between its neighbours',
    text: 'hi 😀 there',
    pieces: ['hi', null, 'there'],
    expected: ['hi', '😀', 'there'],
  },
  {
    name: 'two unknown tokens in a row take one visible run each',
    text: 'a 😀 🎉 b',
    pieces: ['a', null, null, 'b'],
    expected: ['a', '😀', '🎉', 'b'],
  },
  {
    name: 'byte pieces decoded together share their characters',
    text: 'x 東京',
    pieces: ['x', '東', SAME_PIECE, SAME_PIECE, '京', SAME_PIECE, SAME_PIECE],
    expected: ['x', '東', '東', '東', '京', '京', '京'],
  },
  {
    name: 'a piece of whitespace only has no place',
    text: 'a  b',
    pieces: ['a', ' ', 'b'],
    expected: ['a', null, 'b'],
  },
];

for (const c of ALIGN_CASES) {
  test(`alignPieces: ${c.name}`, () => {
    assert.deepEqual(slices(c.text, alignPieces(c.text, c.pieces)), c.expected);
  });
}

test('spannedTokens (WordPiece, uncased): accents, emoji (unknown) and CJK point into the original text', async () => {
  const tokenizer = new TextTokenizer(
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')),
    {},
    'tokenizer.json',
  );
  const text = 'Café 😀 naïve 東京 RÉSUMÉS!';
  const { tokens, spans, subword } = tokenizer.spannedTokens(text);
  const words = slices(text, spans);
  assert.ok(
    words.every((w) => w !== null),
    'every token is placed',
  );
  // In order, without overlaps, covering every visible character.
  assert.equal(words.join(''), text.replace(/\s+/g, ''));
  assert.ok(words.includes('😀'));
  assert.ok(words.includes('東') && words.includes('京'), 'each CJK character is a token of its own');
  tokens.forEach((token, i) => {
    assert.equal(subword[i], token.startsWith('##'), `${token}: a sub-word exactly when it carries ##`);
  });
  // Offsets are UTF-16 indices: the emoji is two code units, "é" one.
  const emoji = words.indexOf('😀');
  assert.deepEqual(spans[emoji], { start: 5, end: 7 });
});

/** Byte-level BPE's byte → character table (GPT-2's): printable bytes stand for themselves. */
function byteSymbols(): string[] {
  const direct: number[] = [];
  for (let b = 33; b <= 126; b += 1) direct.push(b);
  for (let b = 161; b <= 172; b += 1) direct.push(b);
  for (let b = 174; b <= 255; b += 1) direct.push(b);
  const symbols: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b += 1) {
    symbols[b] = direct.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + shifted++);
  }
  return symbols;
}

function byteLevelTokenizer(): TextTokenizer {
  const specials = ['<s>', '<pad>', '</s>', '<unk>'];
  const vocab: Record<string, number> = {};
  for (const s of [...specials, ...byteSymbols()]) vocab[s] = Object.keys(vocab).length;
  const merges = ['Ġ P', 'ĠP a', 'ĠPa r', 'ĠPar i', 'ĠPari s'];
  for (const merge of merges) vocab[merge.replace(' ', '')] = Object.keys(vocab).length;
  return new TextTokenizer(
    {
      version: '1.0',
      added_tokens: specials.map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: {
        type: 'RobertaProcessing',
        sep: ['</s>', 2],
        cls: ['<s>', 0],
        trim_offsets: true,
        add_prefix_space: false,
      },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges,
      },
    },
    {},
    'byte-level tokenizer.json',
  );
}

test('spannedTokens (byte-level BPE): byte pieces of é, an emoji and CJK each point at their whole character', () => {
  const tokenizer = byteLevelTokenizer();
  const text = 'Café 😀 in Paris 東京';
  const { tokens, spans, subword } = tokenizer.spannedTokens(text);
  assert.deepEqual(slices(text, spans), [
    'C',
    'a',
    'f',
    'é',
    'é',
    null, // Ġ alone: a space, no visible text
    '😀',
    '😀',
    '😀',
    '😀',
    null,
    'i',
    'n',
    'Paris', // ĠParis: the space is not part of the word
    null,
    '東',
    '東',
    '東',
    '京',
    '京',
    '京',
  ]);
  assert.equal(tokens[13], 'ĠParis');
  // No continuing-subword prefix: a token continues a word when no whitespace is before it.
  assert.deepEqual([subword[0], subword[1], subword[11], subword[12], subword[13]], [false, true, false, true, false]);
  // The windows' special tokens are the post-processor's.
  assert.deepEqual(tokenizer.withSpecials([10, 11]).ids, [0, 10, 11, 2]);
  assert.deepEqual(tokenizer.specialsAround, { leading: 1, trailing: 1 });
});
