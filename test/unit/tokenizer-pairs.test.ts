import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pairLengths } from '../../src/model/pair-template.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { EMBEDDED_MODEL } from '../fixtures/models.js';

// The embedded model's tokenizer: bert-base-uncased's WordPiece vocabulary and a BERT-style
// TemplateProcessing ([CLS] A [SEP] B [SEP], type ids 0 for A, 1 for B).
const bertPath = join(EMBEDDED_MODEL, 'tokenizer.json');
const bert = new TextTokenizer(
  JSON.parse(readFileSync(bertPath, 'utf8')) as unknown,
  JSON.parse(readFileSync(join(EMBEDDED_MODEL, 'tokenizer_config.json'), 'utf8')) as unknown,
  bertPath,
);
const CLS = 101;
const SEP = 102;

// Expected ids come from vocab.txt (an id is a line number), not from the tokenizer under test;
// every word below is one whole WordPiece token.
const VOCAB = readFileSync(join(EMBEDDED_MODEL, 'vocab.txt'), 'utf8').split('\n');
function vocabIds(text: string): number[] {
  return text.split(' ').map((word) => {
    const id = VOCAB.indexOf(word);
    assert.ok(id > 0, `"${word}" is a whole token of vocab.txt`);
    return id;
  });
}
function bertPair(first: number[], second: number[]): { ids: number[]; typeIds: number[] } {
  return {
    ids: [CLS, ...first, SEP, ...second, SEP],
    typeIds: [0, ...first.map(() => 0), 0, ...second.map(() => 1), 1],
  };
}

const QUERY = 'a great movie'; // 3 tokens
const PASSAGE = 'the plot is bad and the actors are worse'; // 9 tokens
const LONG_A = 'good bad film plot actor scene good bad'; // 8 tokens
const LONG_B = 'the film is good and the plot is bad'; // 9 tokens

// A RoBERTa-style tokenizer built here: byte-level BPE with a prefix space, so every word
// starts with "Ġ"; merges make each word below one token. Ids are fixed by this table.
const BPE_VOCAB: Record<string, number> = {
  '<s>': 0,
  '<pad>': 1,
  '</s>': 2,
  '<unk>': 3,
  Ġ: 4,
  a: 5,
  c: 6,
  d: 7,
  e: 8,
  g: 9,
  h: 10,
  n: 11,
  o: 12,
  s: 13,
  t: 14,
  Ġt: 15,
  he: 16,
  Ġthe: 17,
  at: 18,
  Ġc: 19,
  Ġcat: 20,
  Ġs: 21,
  Ġsat: 22,
  Ġd: 23,
  og: 24,
  Ġdog: 25,
  on: 26,
  Ġon: 27,
};
const MERGES = ['Ġ t', 'h e', 'Ġt he', 'a t', 'Ġ c', 'Ġc at', 'Ġ s', 'Ġs at', 'Ġ d', 'o g', 'Ġd og', 'o n', 'Ġ on'];
const W = { the: 17, cat: 20, sat: 22, dog: 25, on: 27 } as const;
const [BOS, EOS] = [0, 2];

function bpeTokenizer(postProcessor: unknown): TextTokenizer {
  const special = (content: string) => ({
    id: BPE_VOCAB[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['<s>', '<pad>', '</s>', '<unk>'].map(special),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: BPE_VOCAB,
      merges: MERGES,
    },
  };
  return new TextTokenizer(json, { pad_token: '<pad>' }, '/test/bpe/tokenizer.json');
}

const ROBERTA_PROCESSING = {
  type: 'RobertaProcessing',
  sep: ['</s>', 2],
  cls: ['<s>', 0],
  trim_offsets: true,
  add_prefix_space: true,
};
const roberta = bpeTokenizer(ROBERTA_PROCESSING);

describe('TextTokenizer.encodePair layouts', () => {
  test('TextTokenizer.encodePair on a BERT template: [CLS] A [SEP] B [SEP], type ids 0…0 1…1', () => {
    assert.equal(bert.pairStyle, 'template');
    assert.equal(bert.pairSpecialTokens, 3);
    const encoded = bert.encodePair(QUERY, PASSAGE, 128);
    assert.deepEqual(encoded, { ...bertPair(vocabIds(QUERY), vocabIds(PASSAGE)), truncated: false });
    // An empty second text keeps its separator, as in Hugging Face's tokenizers.
    assert.deepEqual(bert.encodePair(QUERY, '', 128).ids, [CLS, ...vocabIds(QUERY), SEP, SEP]);
    // Spelled out once, so the helper cannot hide a shared mistake.
    assert.deepEqual(encoded.ids.slice(0, 6), [101, 1037, 2307, 3185, 102, 1996]);
    assert.deepEqual(encoded.typeIds.slice(3, 7), [0, 0, 1, 1]);
  });

  test('TextTokenizer.encodePair on RobertaProcessing: <s> A </s></s> B </s>, every type id 0', () => {
    assert.equal(roberta.pairStyle, 'roberta');
    assert.equal(roberta.pairSpecialTokens, 4);
    const encoded = roberta.encodePair('the cat sat', 'the dog', 64);
    assert.deepEqual(encoded.ids, [BOS, W.the, W.cat, W.sat, EOS, EOS, W.the, W.dog, EOS]);
    assert.deepEqual(encoded.typeIds, [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(encoded.truncated, false);
    // The single text keeps its own layout.
    assert.deepEqual(roberta.encode('the cat sat', 64).ids, [BOS, W.the, W.cat, W.sat, EOS]);
  });

  test('TextTokenizer.encodePair on a Sequence [ByteLevel, RobertaProcessing] finds the RoBERTa layout', () => {
    const tokenizer = bpeTokenizer({
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        ROBERTA_PROCESSING,
      ],
    });
    assert.equal(tokenizer.pairStyle, 'roberta');
    assert.deepEqual(tokenizer.encodePair('the cat', 'on', 64).ids, [BOS, W.the, W.cat, EOS, EOS, W.on, EOS]);
  });

  test('TextTokenizer.encodePair on BertProcessing: [CLS] A [SEP] B [SEP], the second part type id 1', () => {
    const tokenizer = bpeTokenizer({ type: 'BertProcessing', sep: ['</s>', 2], cls: ['<s>', 0] });
    assert.equal(tokenizer.pairStyle, 'bert');
    const encoded = tokenizer.encodePair('the cat', 'the dog', 64);
    assert.deepEqual(encoded.ids, [BOS, W.the, W.cat, EOS, W.the, W.dog, EOS]);
    assert.deepEqual(encoded.typeIds, [0, 0, 0, 0, 1, 1, 1]);
  });

  test('TextTokenizer.encodePair follows a TemplateProcessing pair template as written (B first here)', () => {
    const tokenizer = bpeTokenizer({
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '</s>', type_id: 1 } },
        { Sequence: { id: 'A', type_id: 2 } },
        { SpecialToken: { id: 'SEP2', type_id: 2 } },
      ],
      // A special token may stand for several ids.
      special_tokens: {
        '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] },
        '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] },
        SEP2: { id: 'SEP2', ids: [2, 1], tokens: ['</s>', '<pad>'] },
      },
    });
    assert.equal(tokenizer.pairStyle, 'template');
    assert.equal(tokenizer.pairSpecialTokens, 4);
    const encoded = tokenizer.encodePair('the cat', 'on', 64);
    assert.deepEqual(encoded.ids, [0, W.on, 2, W.the, W.cat, 2, 1]);
    assert.deepEqual(encoded.typeIds, [0, 1, 1, 2, 2, 2, 2]);
  });

  test('TextTokenizer.encodePair without a post-processor concatenates, the second text type id 1', () => {
    const tokenizer = bpeTokenizer(null);
    assert.equal(tokenizer.pairStyle, 'none');
    assert.deepEqual(tokenizer.encodePair('the cat', 'the dog', 64), {
      ids: [W.the, W.cat, W.the, W.dog],
      typeIds: [0, 0, 1, 1],
      truncated: false,
    });
  });

  test('TextTokenizer.encodePair with a pair template lacking B throws KILN_ERR_CONFIG_INVALID; single texts still work', () => {
    const tokenizer = bpeTokenizer({
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }],
      special_tokens: {},
    });
    assert.equal(tokenizer.pairStyle, null);
    assert.deepEqual(tokenizer.encode('the cat', 64).ids, [W.the, W.cat]);
    assert.throws(() => tokenizer.encodePair('the cat', 'the dog', 64), {
      code: 'KILN_ERR_CONFIG_INVALID',
      message: /cannot encode text pairs: its pair template must place Sequence B exactly once/,
    });
  });
});

describe('TextTokenizer.encodePair truncation', () => {
  test('TextTokenizer.encodePair(total exactly maxLength) is not truncated', () => {
    const total = 3 + 9 + 3;
    const exact = bert.encodePair(QUERY, PASSAGE, total);
    assert.equal(exact.ids.length, total);
    assert.equal(exact.truncated, false);
  });

  // [first, second, maxLength, strategy, direction, kept first, kept second]: the kept counts
  // follow Hugging Face's rule (the longer text is cut to the shorter one's length, then both
  // to half of what is left, the longer keeping the odd token, the second on a tie).
  const cases: Array<[string, string, number, 'longest_first' | 'only_second', 'right' | 'left', number, number]> = [
    [QUERY, PASSAGE, 12, 'longest_first', 'right', 3, 6],
    [QUERY, PASSAGE, 12, 'longest_first', 'left', 3, 6],
    [PASSAGE, QUERY, 12, 'longest_first', 'right', 6, 3],
    [LONG_A, LONG_B, 12, 'longest_first', 'right', 4, 5],
    [LONG_B, LONG_A, 12, 'longest_first', 'left', 5, 4],
    [LONG_A, LONG_A, 12, 'longest_first', 'right', 4, 5],
    [LONG_A, LONG_B, 13, 'longest_first', 'right', 5, 5],
    [LONG_A, LONG_B, 12, 'only_second', 'right', 8, 1],
    [LONG_A, LONG_B, 12, 'only_second', 'left', 8, 1],
    [QUERY, PASSAGE, 12, 'only_second', 'left', 3, 6],
  ];
  for (const [first, second, maxLength, strategy, direction, keepFirst, keepSecond] of cases) {
    test(`TextTokenizer.encodePair(${vocabIds(first).length}+${vocabIds(second).length} tokens, ${maxLength}, ${strategy}, ${direction}) keeps ${keepFirst}+${keepSecond}`, () => {
      const a = vocabIds(first);
      const b = vocabIds(second);
      const take = (ids: number[], n: number) => (direction === 'right' ? ids.slice(0, n) : ids.slice(ids.length - n));
      const encoded = bert.encodePair(first, second, maxLength, {
        truncationStrategy: strategy,
        truncationDirection: direction,
      });
      assert.deepEqual(encoded, { ...bertPair(take(a, keepFirst), take(b, keepSecond)), truncated: true });
      assert.equal(encoded.ids.length, maxLength);
    });
  }

  test('TextTokenizer.encodePair cuts the right end by default and the left end on request (ids spelled out)', () => {
    // PASSAGE is the 9 ids 1996 5436 2003 2919 1998 1996 5889 2024 4788; 6 of them fit.
    assert.deepEqual(
      bert.encodePair(QUERY, PASSAGE, 12).ids,
      [101, 1037, 2307, 3185, 102, 1996, 5436, 2003, 2919, 1998, 1996, 102],
    );
    assert.deepEqual(
      bert.encodePair(QUERY, PASSAGE, 12, { truncationDirection: 'left' }).ids,
      [101, 1037, 2307, 3185, 102, 2919, 1998, 1996, 5889, 2024, 4788, 102],
    );
  });

  test('TextTokenizer.encodePair on RoBERTa keeps <s> </s></s> </s> when cutting (4 specials)', () => {
    const encoded = roberta.encodePair('the cat sat on the dog', 'the dog sat on the cat', 10);
    // 6 + 6 tokens, 6 left beside the specials: 3 each.
    assert.deepEqual(encoded.ids, [BOS, W.the, W.cat, W.sat, EOS, EOS, W.the, W.dog, W.sat, EOS]);
    assert.ok(encoded.typeIds.every((t) => t === 0));
    assert.equal(encoded.truncated, true);
    const left = roberta.encodePair('the cat sat on the dog', 'the dog sat on the cat', 10, {
      truncationDirection: 'left',
    });
    assert.deepEqual(left.ids, [BOS, W.on, W.the, W.dog, EOS, EOS, W.on, W.the, W.cat, EOS]);
  });

  test('TextTokenizer.encodePair(only_second, the first text fills max length) throws KILN_ERR_INPUT_PAIR_NO_ROOM (413)', () => {
    // LONG_B is 9 tokens; with 3 specials, 12 leaves nothing for the second text.
    assert.throws(() => bert.encodePair(LONG_B, QUERY, 12, { truncationStrategy: 'only_second', where: 'texts[2]' }), {
      code: 'KILN_ERR_INPUT_PAIR_NO_ROOM',
      status: 413,
      message:
        /^texts\[2\] cannot be cut to 12 tokens by cutting only its second text: the first text has 9 tokens and the pair adds 3 special tokens.*use the truncation longest_first/,
    });
    // One token of room is enough.
    const one = bert.encodePair(LONG_A, QUERY, 12, { truncationStrategy: 'only_second' });
    assert.deepEqual(one.ids, bertPair(vocabIds(LONG_A), vocabIds('a')).ids);
  });

  test('TextTokenizer.encodePair(truncate: false, too long) throws KILN_ERR_INPUT_TOO_LONG (413) naming tokens and limit', () => {
    assert.throws(() => bert.encodePair(QUERY, PASSAGE, 12, { truncate: false }), {
      code: 'KILN_ERR_INPUT_TOO_LONG',
      status: 413,
      message:
        /^the text pair has 15 tokens with its special tokens, and the model reads at most 12; set truncate: true .*or shorten the text$/,
    });
    assert.equal(bert.encodePair(QUERY, PASSAGE, 15, { truncate: false }).truncated, false);
  });

  test('TextTokenizer.encodePair with a max length that leaves no token per text throws KILN_ERR_INPUT_PAIR_MAX_LENGTH', () => {
    assert.throws(() => bert.encodePair(QUERY, PASSAGE, 4), {
      code: 'KILN_ERR_INPUT_PAIR_MAX_LENGTH',
      status: 422,
      message: /at most 4 tokens.*3 special tokens.*--max-length 5 or more/,
    });
  });
});

describe('pairLengths', () => {
  // Hugging Face tokenizers' own expectations for longest_first at max length 7 (its
  // truncate_encodings_longest_first test), over lengths 0, 2, 4 and 8.
  const expected: Array<[number, number, number, number]> = [
    [0, 0, 0, 0],
    [0, 2, 0, 2],
    [0, 4, 0, 4],
    [0, 8, 0, 7],
    [2, 0, 2, 0],
    [2, 2, 2, 2],
    [2, 4, 2, 4],
    [2, 8, 2, 5],
    [4, 0, 4, 0],
    [4, 2, 4, 2],
    [4, 4, 3, 4],
    [4, 8, 3, 4],
    [8, 0, 7, 0],
    [8, 2, 5, 2],
    [8, 4, 4, 3],
    [8, 8, 3, 4],
  ];
  for (const [first, second, keepFirst, keepSecond] of expected) {
    test(`pairLengths(${first}, ${second}, 7, longest_first) is [${keepFirst}, ${keepSecond}]`, () => {
      assert.deepEqual(pairLengths(first, second, 7, 'longest_first'), [keepFirst, keepSecond]);
    });
  }

  test('pairLengths(only_second) cuts only the second and needs one token of it left', () => {
    assert.deepEqual(pairLengths(3, 9, 9, 'only_second'), [3, 6]);
    assert.deepEqual(pairLengths(8, 9, 9, 'only_second'), [8, 1]);
    assert.equal(pairLengths(9, 9, 9, 'only_second'), null);
    assert.deepEqual(pairLengths(9, 0, 9, 'only_second'), [9, 0]);
  });
});

describe('TextTokenizer.encode options', () => {
  const WORDS = ['good', 'bad', 'film', 'plot', 'actor', 'scene'];
  const words = Array.from({ length: 40 }, (_, i) => WORDS[i % WORDS.length] as string);
  const longText = words.join(' ');
  const full = bert.encode(longText, 100_000);

  test('TextTokenizer.encode(text, n) equals encode(text, n, { truncate: true, truncationDirection: "right" })', () => {
    for (const maxLength of [3, 16, 128]) {
      assert.deepEqual(
        bert.encode(longText, maxLength, { truncate: true, truncationDirection: 'right' }),
        bert.encode(longText, maxLength),
      );
    }
  });

  test('TextTokenizer.encode(40 words, 16, left) keeps [CLS], the last 14 text tokens, then [SEP]', () => {
    assert.equal(full.ids.length, 42);
    const cut = bert.encode(longText, 16, { truncationDirection: 'left' });
    assert.deepEqual(cut.ids, [CLS, ...vocabIds(words.slice(-14).join(' ')), SEP]);
    assert.equal(cut.truncated, true);
    assert.equal(cut.typeIds.length, 16);
  });

  test('TextTokenizer.encode(RoBERTa-style, left) keeps <s> and </s>', () => {
    const cut = roberta.encode('the cat sat on the dog', 5, { truncationDirection: 'left' });
    assert.deepEqual(cut.ids, [BOS, W.on, W.the, W.dog, EOS]);
  });

  test('TextTokenizer.encode(truncate: false, too long) throws KILN_ERR_INPUT_TOO_LONG (413) naming 42 tokens and 16', () => {
    assert.throws(() => bert.encode(longText, 16, { truncate: false, where: 'texts[0]' }), {
      code: 'KILN_ERR_INPUT_TOO_LONG',
      status: 413,
      message: /^texts\[0\] has 42 tokens with its special tokens, and the model reads at most 16; set truncate: true/,
    });
    assert.deepEqual(bert.encode(longText, 42, { truncate: false }), { ...full, truncated: false });
  });
});
