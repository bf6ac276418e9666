/**
 * aggregate() and redact() on hand-made token scores, table-driven: each case gives tokens
 * (label scores, place, whether a token continues a word) and the groups Hugging Face's
 * token-classification pipeline makes of them, worked out by hand from its definitions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AggregationStrategy,
  aggregate,
  type Entity,
  redact,
  type ScoredToken,
} from '../../src/tasks/token-classification/aggregate.js';
import { highlight } from '../../src/tasks/token-classification/highlight.js';
import { ownerOfEachToken, windowsOf } from '../../src/tasks/token-classification/windows.js';

const LABELS = ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG'];

/** A token whose score vector puts `p` on `label` and the rest evenly on the others. */
function token(
  text: string,
  piece: string,
  from: number,
  label: string,
  p: number,
  options: { subword?: boolean; index?: number; second?: [string, number] } = {},
): ScoredToken {
  const start = text.indexOf(piece, from);
  const scores = LABELS.map(() => 0);
  scores[LABELS.indexOf(label)] = p;
  let rest = 1 - p;
  if (options.second) {
    scores[LABELS.indexOf(options.second[0])] = options.second[1];
    rest -= options.second[1];
  }
  const others = scores.filter((s) => s === 0).length;
  const filled = scores.map((s) => (s === 0 ? rest / others : s));
  return {
    index: options.index ?? 0,
    scores: filled,
    start,
    end: start + piece.length,
    subword: options.subword ?? false,
    token: piece,
  };
}

// "Jeanne Microsoft works" as Je ##anne Micro ##soft works (indices 1..5, [CLS] is 0).
const TEXT = 'Jeanne Microsoft works';
const TOKENS: ScoredToken[] = [
  token(TEXT, 'Je', 0, 'B-PER', 0.9, { index: 1 }),
  token(TEXT, 'anne', 2, 'I-PER', 0.6, { subword: true, index: 2, second: ['B-ORG', 0.3] }),
  token(TEXT, 'Micro', 7, 'B-ORG', 0.8, { index: 3 }),
  // The sub-word disagrees with its word's first token: word strategies override it.
  token(TEXT, 'soft', 12, 'I-PER', 0.5, { subword: true, index: 4, second: ['I-ORG', 0.45] }),
  token(TEXT, 'works', 17, 'O', 0.99, { index: 5 }),
];

const near = (a: number, b: number): boolean => Math.abs(a - b) < 1e-12;

const CASES: Array<{
  strategy: AggregationStrategy;
  ignore?: string[];
  expected: Array<[string, number, number, number]>;
}> = [
  {
    strategy: 'none',
    // [label, score, start, end]; O is ignored by default.
    expected: [
      ['B-PER', 0.9, 0, 2],
      ['I-PER', 0.6, 2, 6],
      ['B-ORG', 0.8, 7, 12],
      ['I-PER', 0.5, 12, 16],
    ],
  },
  {
    strategy: 'simple',
    // B-PER I-PER → PER (mean 0.75); B-ORG starts ORG; I-PER after ORG starts a new PER.
    expected: [
      ['PER', 0.75, 0, 6],
      ['ORG', 0.8, 7, 12],
      ['PER', 0.5, 12, 16],
    ],
  },
  {
    strategy: 'first',
    // Each word takes its first token's label and score: Jeanne B-PER 0.9, Microsoft B-ORG 0.8.
    expected: [
      ['PER', 0.9, 0, 6],
      ['ORG', 0.8, 7, 16],
    ],
  },
  {
    strategy: 'max',
    // Jeanne: Je (0.9) beats anne (0.6) → B-PER 0.9; Microsoft: Micro (0.8) beats soft (0.5) → B-ORG 0.8.
    expected: [
      ['PER', 0.9, 0, 6],
      ['ORG', 0.8, 7, 16],
    ],
  },
  {
    strategy: 'average',
    // Jeanne: B-PER (0.9 + 0.1/3)/2 ≈ 0.467 beats I-PER (0.1/4 + 0.6)/2 = 0.3125.
    // Microsoft: B-ORG (0.8 + 0.05/3)/2 ≈ 0.408, I-PER (0.05 + 0.5)/2 = 0.275, I-ORG (0.05 + 0.45)/2 = 0.25 → B-ORG.
    expected: [
      ['PER', (0.9 + 0.1 / 3) / 2, 0, 6],
      ['ORG', (0.8 + 0.05 / 3) / 2, 7, 16],
    ],
  },
  {
    strategy: 'simple',
    ignore: [],
    expected: [
      ['PER', 0.75, 0, 6],
      ['ORG', 0.8, 7, 12],
      ['PER', 0.5, 12, 16],
      ['O', 0.99, 17, 22],
    ],
  },
];

for (const c of CASES) {
  test(`aggregate(${c.strategy}${c.ignore ? `, ignore ${JSON.stringify(c.ignore)}` : ''}) makes the pipeline's groups`, () => {
    const got = aggregate(TEXT, TOKENS, LABELS, c.strategy, c.ignore);
    assert.deepEqual(
      got.map((e) => ['entity_group' in e ? e.entity_group : e.entity, e.start, e.end, e.word]),
      c.expected.map(([label, , start, end]) => [label, start, end, TEXT.slice(start, end)]),
    );
    got.forEach((e, i) => {
      assert.ok(near(e.score, c.expected[i]![1]), `${i}: ${e.score} vs ${c.expected[i]![1]}`);
    });
    if (c.strategy === 'none')
      assert.deepEqual(
        got.map((e) => (e as { index: number }).index),
        [1, 2, 3, 4],
      );
  });
}

test('aggregate(simple): two B- labels in a row are two entities; I- after O starts one', () => {
  const text = 'Ann Bob x Cy';
  const tokens = [
    token(text, 'Ann', 0, 'B-PER', 0.9),
    token(text, 'Bob', 4, 'B-PER', 0.7),
    token(text, 'x', 8, 'O', 0.9),
    token(text, 'Cy', 10, 'I-PER', 0.6),
  ];
  assert.deepEqual(
    aggregate(text, tokens, LABELS, 'simple').map((e) => e.word),
    ['Ann', 'Bob', 'Cy'],
  );
});

test('aggregate: labels without B-/I- prefixes group when adjacent and equal', () => {
  const labels = ['O', 'PER'];
  const text = 'Ann Lee said';
  const score = (label: string, p: number): number[] => labels.map((l) => (l === label ? p : 1 - p));
  const tokens: ScoredToken[] = [
    { index: 1, scores: score('PER', 0.9), start: 0, end: 3, subword: false, token: 'Ann' },
    { index: 2, scores: score('PER', 0.7), start: 4, end: 7, subword: false, token: 'Lee' },
    { index: 3, scores: score('O', 0.8), start: 8, end: 12, subword: false, token: 'said' },
  ];
  const [group] = aggregate(text, tokens, labels, 'simple') as Array<Entity & { entity_group: string }>;
  assert.equal(group!.entity_group, 'PER');
  assert.equal(group!.word, 'Ann Lee');
  assert.ok(near(group!.score, 0.8));
});

test('aggregate: a type with a hyphen keeps it (B-E-MAIL groups as E-MAIL, the text after the first "-")', () => {
  const labels = ['O', 'B-E-MAIL', 'I-E-MAIL'];
  const text = 'mail ann at home';
  const score = (label: string): number[] => labels.map((l) => (l === label ? 0.8 : 0.1));
  const tokens: ScoredToken[] = [
    { index: 1, scores: score('O'), start: 0, end: 4, subword: false, token: 'mail' },
    { index: 2, scores: score('B-E-MAIL'), start: 5, end: 8, subword: false, token: 'ann' },
    { index: 3, scores: score('I-E-MAIL'), start: 9, end: 11, subword: false, token: 'at' },
    { index: 4, scores: score('I-E-MAIL'), start: 12, end: 16, subword: false, token: 'home' },
  ];
  const groups = aggregate(text, tokens, labels, 'simple') as Array<Entity & { entity_group: string }>;
  assert.deepEqual(
    groups.map((g) => [g.entity_group, g.word]),
    [['E-MAIL', 'ann at home']],
  );
});

const REDACT_CASES: Array<{ name: string; text: string; entities: Entity[]; expected: string }> = [
  {
    name: 'groups',
    text: 'Ann Lee lives in Oslo.',
    entities: [
      { entity_group: 'PER', score: 1, word: 'Ann Lee', start: 0, end: 7 },
      { entity_group: 'LOC', score: 1, word: 'Oslo', start: 17, end: 21 },
    ],
    expected: '[PER] lives in [LOC].',
  },
  {
    name: 'touching pieces of one type under none',
    text: 'Johnson left',
    entities: [
      { entity: 'B-PER', score: 1, index: 1, word: 'John', start: 0, end: 4 },
      { entity: 'I-PER', score: 1, index: 2, word: 'son', start: 4, end: 7 },
    ],
    expected: '[PER] left',
  },
  {
    name: 'emoji and accents around an entity keep their code units',
    text: '😀 Zoë 😀',
    entities: [{ entity_group: 'PER', score: 1, word: 'Zoë', start: 3, end: 6 }],
    expected: '😀 [PER] 😀',
  },
];

test('redact: a BIOES label is marked by its type under none as under simple (S-PER is [PER], not [S-PER])', () => {
  const labels = ['O', 'S-PER', 'B-LOC', 'E-LOC'];
  const text = 'Zoë went to Oslo';
  const score = (label: string): number[] => labels.map((l) => (l === label ? 0.7 : 0.1));
  const tokens: ScoredToken[] = [
    { index: 1, scores: score('S-PER'), start: 0, end: 3, subword: false, token: 'zoe' },
    { index: 2, scores: score('O'), start: 4, end: 8, subword: false, token: 'went' },
    { index: 3, scores: score('O'), start: 9, end: 11, subword: false, token: 'to' },
    { index: 4, scores: score('B-LOC'), start: 12, end: 14, subword: false, token: 'os' },
    { index: 5, scores: score('E-LOC'), start: 14, end: 16, subword: true, token: '##lo' },
  ];
  for (const strategy of ['none', 'simple'] as const)
    assert.equal(redact(text, aggregate(text, tokens, labels, strategy)), '[PER] went to [LOC]', strategy);
});

for (const c of REDACT_CASES) {
  test(`redact: ${c.name}`, () => {
    assert.equal(redact(c.text, c.entities), c.expected);
  });
}

const WINDOW_CASES: Array<{ count: number; room: number; stride: number; windows: Array<[number, number]> }> = [
  { count: 5, room: 8, stride: 2, windows: [[0, 5]] },
  {
    count: 10,
    room: 4,
    stride: 0,
    windows: [
      [0, 4],
      [4, 8],
      [8, 10],
    ],
  },
  {
    count: 10,
    room: 4,
    stride: 2,
    windows: [
      [0, 4],
      [2, 6],
      [4, 8],
      [6, 10],
    ],
  },
  {
    count: 9,
    room: 6,
    stride: 3,
    windows: [
      [0, 6],
      [3, 9],
    ],
  },
];

for (const c of WINDOW_CASES) {
  test(`windowsOf(${c.count}, ${c.room}, stride ${c.stride}) covers every token`, () => {
    const windows = windowsOf(c.count, c.room, c.stride);
    assert.deepEqual(
      windows.map((w) => [w.start, w.end]),
      c.windows,
    );
  });
}

test('ownerOfEachToken: a token takes the window where it is farthest from an edge', () => {
  // Windows [0, 6) and [3, 9): token 3 is 2 from window 0's end, 0 from window 1's start → window 0;
  // token 4 is 1 from either edge (a tie: the earlier window); token 5 is 0 from window 0's end,
  // 2 from window 1's start → window 1.
  assert.deepEqual(ownerOfEachToken(9, windowsOf(9, 6, 3)), [0, 0, 0, 0, 0, 1, 1, 1, 1]);
});

test('highlight marks each entity inline with its label, or shows the redacted text', () => {
  const text = 'Ann Lee lives in Oslo.';
  const entities: Entity[] = [
    { entity_group: 'PER', score: 1, word: 'Ann Lee', start: 0, end: 7 },
    { entity_group: 'LOC', score: 1, word: 'Oslo', start: 17, end: 21 },
  ];
  const answer = { text, entities, windows: 1, tokens: 8, truncated: false };
  assert.equal(highlight(answer, false), '2 entities  [Ann Lee](PER) lives in [Oslo](LOC).');
  assert.ok(highlight(answer, true).includes('Ann Lee\u001b[0m'), 'colored, then reset');
  assert.ok(!highlight(answer, true).includes('[Ann Lee]'));
  assert.equal(highlight({ ...answer, redacted: redact(text, entities) }, false), '2 entities  [PER] lives in [LOC].');
});
