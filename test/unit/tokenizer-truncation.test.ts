import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { EMBEDDED_MODEL } from '../fixtures/models.js';

const CLS = 101;
const SEP = 102;

const tokenizerPath = join(EMBEDDED_MODEL, 'tokenizer.json');
const tokenizer = new TextTokenizer(
  JSON.parse(readFileSync(tokenizerPath, 'utf8')) as unknown,
  JSON.parse(readFileSync(join(EMBEDDED_MODEL, 'tokenizer_config.json'), 'utf8')) as unknown,
  tokenizerPath,
);

const WORDS = ['good', 'bad', 'film', 'plot', 'actor', 'scene'];
const longText = Array.from({ length: 300 }, (_, i) => WORDS[i % WORDS.length]).join(' ');

describe('TextTokenizer.encode truncation', () => {
  test('TextTokenizer.encode(short text) keeps [CLS] first and [SEP] last, not truncated', () => {
    const encoded = tokenizer.encode('a great movie', 128);
    assert.deepEqual(encoded.ids, [CLS, 1037, 2307, 3185, SEP]);
    assert.equal(encoded.truncated, false);
  });

  const limits = [16, 8, 3, 128];
  for (const maxLength of limits) {
    test(`TextTokenizer.encode(300 words, ${maxLength}) gives exactly ${maxLength} ids: the text head, then [SEP]`, () => {
      const full = tokenizer.encode(longText, 100_000);
      assert.equal(full.truncated, false);
      assert.ok(full.ids.length > maxLength);
      const cut = tokenizer.encode(longText, maxLength);
      assert.equal(cut.ids.length, maxLength);
      assert.equal(cut.ids[0], CLS);
      assert.equal(cut.ids[maxLength - 1], SEP);
      assert.deepEqual(cut.ids.slice(1, maxLength - 1), full.ids.slice(1, maxLength - 1));
      assert.equal(cut.truncated, true);
      assert.equal(cut.typeIds.length, cut.ids.length);
    });
  }

  test('TextTokenizer.encode(text of exactly maxLength tokens) is not truncated', () => {
    const text = 'good bad film plot';
    const length = tokenizer.encode(text, 1000).ids.length;
    assert.equal(length, 6);
    const exact = tokenizer.encode(text, length);
    assert.equal(exact.truncated, false);
    assert.deepEqual(exact.ids, tokenizer.encode(text, 1000).ids);

    const oneLess = tokenizer.encode(text, length - 1);
    assert.equal(oneLess.truncated, true);
    assert.equal(oneLess.ids.length, length - 1);
    assert.equal(oneLess.ids.at(-1), SEP);
  });

  const texts = ['a', 'a great movie', longText];
  for (const text of texts) {
    test(`TextTokenizer.encode(${text.length}-char text).typeIds has one 0 per id`, () => {
      for (const maxLength of [16, 512]) {
        const encoded = tokenizer.encode(text, maxLength);
        assert.equal(encoded.typeIds.length, encoded.ids.length);
        assert.ok(encoded.typeIds.every((t) => t === 0));
      }
    });
  }

  test('TextTokenizer padId is 0 ([PAD]) and describe() counts the specials', () => {
    assert.equal(tokenizer.padId, 0);
    assert.deepEqual(tokenizer.describe(), { padTokenId: 0, specialTokensAfterText: 1, specialTokensTotal: 2 });
  });

  test('new TextTokenizer(not a tokenizer) throws KILN_ERR_CONFIG_INVALID', () => {
    assert.throws(() => new TextTokenizer({ model: 'nope' }, {}, '/x/tokenizer.json'), {
      code: 'KILN_ERR_CONFIG_INVALID',
      message: /^"\/x\/tokenizer\.json" is not usable: the tokenizer cannot be built/,
    });
  });
});
