/**
 * The BERT-shaped post-norm encoder as one part, for the families that share it (arch/bert-shaped.ts):
 * embeddings (how positions are numbered, token types, a projection), a bias shared by every
 * layer's attention scores (the padding mask, plus MPNet's relative positions), post-norm layers
 * (attention, then the feed-forward block), and the head (on every token, or on the first token),
 * or `last_hidden_state` for a base model. Written in the shapes ONNX Runtime's optimizer fuses
 * (LayerNormalization, the erf GELU, MatMul + Add, the attention pattern of `layers.ts`), as
 * PyTorch's exporter writes them.
 */
import { KilnError } from '../../core/errors.js';
import type { BertShapedParts, FamilyNames } from '../arch/bert-shaped.js';
import type { EncoderConfig } from '../architectures.js';
import type { BuiltGraph, WeightSource } from '../encoder-graph.js';
import { attentionShapes, selfAttention } from '../layers.js';
import { paddingBias, positionIds } from './attention.js';
import { EncoderParts } from './encoder-parts.js';
import { headOutputs } from './heads.js';
import { firstToken } from './pooling.js';

export function buildPostNormEncoder(
  config: Omit<EncoderConfig, 'arch'>,
  names: FamilyNames,
  parts: BertShapedParts,
  source: WeightSource,
): BuiltGraph {
  const p = new EncoderParts(source, names.prefix, config.architecture);
  const g = p.g;
  const H = config.hidden;
  const eps = config.layerNormEps;
  /** `name` relative to the model prefix when it sits inside the base model, as the other names are. */
  const withoutPrefix = (name: string): string =>
    name.startsWith(names.prefix) ? name.slice(names.prefix.length) : name;

  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const inputs = [inputIds, attentionMask];

  // Part: embeddings (word + positions + token types, LayerNorm, then a projection to the hidden size if narrower).
  const E = config.embeddingSize ?? H;
  const word = p.checked(`${names.wordEmbeddings}.weight`, [null, E]);
  const vocabSize = word.shape[0]!;
  let embedded = g.op(
    'Gather',
    [p.tensor(`${names.wordEmbeddings}.weight`, [vocabSize, E]), inputIds],
    { axis: 0 },
    { name: '/embeddings/word/Gather' },
  );
  const positionTable = p.tensor(`${names.positionEmbeddings}.weight`, [config.maxPositions, E]);
  let positions: string;
  if (parts.positions === 'after-padding') {
    // Real tokens count up from padding_idx + 1; padding gets the padding index.
    const pad = p.int('pad_id', [parts.paddingIndex ?? config.padTokenId], []);
    const notPad = g.op('Cast', [g.op('Not', [g.op('Equal', [inputIds, pad])])], { to: 7 });
    positions = g.op('Add', [g.op('Mul', [g.op('CumSum', [notPad, p.int('one', [1], [])]), notPad]), pad]);
  } else {
    positions = positionIds(p, inputIds);
  }
  embedded = g.op('Add', [
    embedded,
    g.op('Gather', [positionTable, positions], { axis: 0 }, { name: '/embeddings/position/Gather' }),
  ]);
  if (
    parts.tokenTypes !== 'none' &&
    names.tokenTypeEmbeddings &&
    config.typeVocabSize > 0 &&
    p.has(`${names.tokenTypeEmbeddings}.weight`)
  ) {
    const table = p.tensor(`${names.tokenTypeEmbeddings}.weight`, [config.typeVocabSize, E]);
    let typeIds = p.int('zero', [0], []);
    if (parts.tokenTypes === 'input') {
      typeIds = g.input('token_type_ids', 'int64', ['batch', 'sequence']);
      inputs.push(typeIds);
    }
    embedded = g.op('Add', [
      embedded,
      g.op('Gather', [table, typeIds], { axis: 0 }, { name: '/embeddings/token_type/Gather' }),
    ]);
  }
  let hidden = p.layerNorm(embedded, names.embeddingNorm, E, eps);
  if (E !== H) {
    if (!names.embeddingProject)
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path: source.path,
        problem: `${config.architecture} has no projection from its embedding size ${E} to its hidden size ${H}`,
      });
    hidden = p.linear(hidden, names.embeddingProject, E, H);
  }

  // Part: the bias on every layer's attention scores: the padding mask, Where(Equal(mask, 0))
  // giving −10000 on padded keys and 0 elsewhere, plus the family's own (MPNet's relative positions).
  let scoreBias = paddingBias(p, attentionMask);
  if (parts.attentionBias)
    scoreBias = g.op('Add', [scoreBias, parts.attentionBias(p, inputIds, config)], undefined, {
      name: '/attention_bias/Add',
    });
  const shapes = attentionShapes(g, H, config.heads);

  // Part: post-norm layers (attention, residual, LayerNorm; feed-forward, residual, LayerNorm).
  for (let i = 0; i < config.layers; i += 1) {
    const n = names.layer(i);
    const projections = { query: n.query, key: n.key, value: n.value };
    const context = selfAttention(g, (which) => p.linear(hidden, projections[which], H, H), shapes, {
      maskBias: scoreBias,
      softmaxName: `/layer.${i}/attention/Softmax`,
    });
    hidden = p.layerNorm(g.op('Add', [p.linear(context, n.attentionOutput, H, H), hidden]), n.attentionNorm, H, eps);
    const expanded = p.activation(
      p.linear(hidden, n.intermediate, H, config.intermediate),
      config.activation,
      `/layer.${i}/activation`,
    );
    hidden = p.layerNorm(
      g.op('Add', [p.linear(expanded, n.output, config.intermediate, H), hidden]),
      n.outputNorm,
      H,
      eps,
    );
  }

  // Part: the head, or the token states for a base model.
  const activation = { Tanh: 'tanh', Relu: 'relu', Gelu: 'gelu' } as const;
  headOutputs(p, hidden, {
    head: config.head,
    hidden: H,
    labels: config.labels,
    tokenHead: names.tokenHead,
    spanHead: names.spanHead,
    // On the first token ([CLS] or <s>): dense, activation, out.
    sequence: {
      pool: (x) =>
        p.activation(
          p.linear(firstToken(p, x), withoutPrefix(names.head.dense), H, H),
          activation[names.head.activation],
          '/head/activation',
        ),
      out: withoutPrefix(names.head.out),
    },
  });
  return { builder: g, inputs, parameters: p.parameters, vocabSize };
}
