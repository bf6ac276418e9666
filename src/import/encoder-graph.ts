/**
 * Builds the ONNX graph of a BERT-shaped encoder (a sequence classifier, a token classifier, a
 * question-answering model, or a base model whose output is last_hidden_state) from a Hugging Face checkpoint, by parts: embeddings (how
 * positions are numbered, token types, a projection), a bias shared by every layer's attention
 * scores (the padding mask, plus MPNet's relative positions), post-norm layers (attention, then
 * the feed-forward block), and the head (on every token, or on the first token). Each family picks its parts
 * (`FAMILY_PARTS` here, or its `ArchitectureDef` under `arch/`).
 * Standard ONNX operators at opset 17, written in the shapes ONNX Runtime's optimizer fuses
 * (LayerNormalization, the erf GELU, MatMul + Add), as PyTorch's exporter writes them.
 * Weights are not read here: each becomes a lazy initializer, streamed when the file is written.
 */
import { KilnError } from '../core/errors.js';
import { GraphBuilder } from '../onnx/builder.js';
import { type Activation, DEFINED_PARTS, type EncoderConfig, FAMILY_NAMES, type FamilyNames } from './architectures.js';
import { attentionShapes, exactGelu, layerNorm, linearNodes, selfAttention, transposedWeight } from './layers.js';

export const IMPORT_OPSET = 17;

/** Where weights come from: a checkpoint on disk, or a generator of synthetic ones. */
export interface WeightSource {
  /** For error messages: the checkpoint folder. */
  readonly path: string;
  shape(name: string): number[] | undefined;
  load(name: string): Promise<Float32Array>;
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** Finds checkpoint names (with or without the model prefix; LayerNorm gamma/beta aliases), checks shapes. */
class Weights {
  constructor(
    private readonly source: WeightSource,
    private readonly names: FamilyNames,
    private readonly architecture: string,
  ) {}

  private resolve(relative: string): string {
    const candidates = [this.names.prefix + relative, relative];
    // Checkpoints converted from TensorFlow name LayerNorm parameters gamma and beta.
    if (relative.endsWith('.weight')) candidates.push(...candidates.map((c) => c.replace(/\.weight$/, '.gamma')));
    if (relative.endsWith('.bias')) candidates.push(...candidates.map((c) => c.replace(/\.bias$/, '.beta')));
    const found = candidates.find((c) => this.source.shape(c) !== undefined);
    if (!found)
      throw new KilnError('KILN_ERR_WEIGHTS_MISSING_TENSOR', {
        path: this.source.path,
        tensor: candidates[0]!,
        architecture: this.architecture,
      });
    return found;
  }

  /** The name under which `relative` lives, after checking its shape (null dims match anything). */
  checked(relative: string, expected: Array<number | null>): { name: string; shape: number[] } {
    const name = this.resolve(relative);
    const shape = this.source.shape(name)!;
    if (shape.length !== expected.length || expected.some((d, i) => d !== null && d !== shape[i])) {
      throw new KilnError('KILN_ERR_WEIGHTS_SHAPE', {
        path: this.source.path,
        tensor: name,
        expected: shapeText(expected.map((d) => (d === null ? '?' : d)) as number[]),
        actual: shapeText(shape),
      });
    }
    return { name, shape };
  }

  has(relative: string): boolean {
    return [this.names.prefix + relative, relative].some((c) => this.source.shape(c) !== undefined);
  }

  load(name: string): Promise<Float32Array> {
    return this.source.load(name);
  }
}

export interface BuiltGraph {
  builder: GraphBuilder;
  inputs: string[];
  parameters: number;
  vocabSize: number;
}

/**
 * The parts a family's graph is built from. The BERT-shaped families' are below; a family
 * defined under `arch/` brings its own in its `ArchitectureDef`.
 */
export interface EncoderParts {
  /**
   * Position ids: `absolute` counts from 0; `after-padding` numbers real tokens from the padding
   * index + 1 and gives padding the padding index (RoBERTa, MPNet).
   */
  positions: 'absolute' | 'after-padding';
  /** The padding index `after-padding` counts from, when fixed by the model's code (MPNet: 1) rather than config.json's pad_token_id. */
  paddingIndex?: number;
  /** token_type_ids: a graph input (BERT, ELECTRA), row 0 for every token (RoBERTa's tokenizer gives no other), or none. */
  tokenTypes: 'input' | 'zero' | 'none';
  /** A bias [1 or batch, heads, tokens, tokens] added to every layer's attention scores, built once. */
  attentionBias?: (ctx: EncoderContext) => string;
}

const FAMILY_PARTS: Readonly<Record<string, EncoderParts>> = {
  bert: { positions: 'absolute', tokenTypes: 'input' },
  roberta: { positions: 'after-padding', tokenTypes: 'zero' },
  distilbert: { positions: 'absolute', tokenTypes: 'none' },
  ...DEFINED_PARTS,
};

/** What a part sees: the graph, the checkpoint's tensors by relative name, and shared constants. */
export interface EncoderContext {
  g: GraphBuilder;
  config: EncoderConfig;
  names: FamilyNames;
  inputIds: string;
  /** A weight used as is, its shape checked. */
  tensor(relative: string, expected: Array<number | null>): string;
  /** A Linear layer: x · Wᵀ + b. */
  linear(x: string, relative: string, inFeatures: number, outFeatures: number, output?: string): string;
  /** Scalar int64 constants 0 and 1. */
  zero: string;
  one: string;
  /** The sequence length, an int64 scalar (made once, when a part first asks). */
  sequenceLength(): string;
}

export function buildEncoderClassifier(config: EncoderConfig, source: WeightSource): BuiltGraph {
  if (config.family === 'parts') return config.arch!.build(source);
  const names = FAMILY_NAMES[config.family];
  const parts = FAMILY_PARTS[config.family]!;
  const w = new Weights(source, names, config.architecture);
  const g = new GraphBuilder(`${config.architecture}`);
  const H = config.hidden;
  let parameters = 0;

  /** `name` relative to the model prefix when it sits inside the base model, as the other names are. */
  const withoutPrefix = (name: string): string =>
    name.startsWith(names.prefix) ? name.slice(names.prefix.length) : name;
  /** A weight used as is. */
  const tensor = (relative: string, expected: Array<number | null>): string => {
    const { name, shape } = w.checked(relative, expected);
    parameters += shape.reduce((a, b) => a * b, 1);
    return g.lazyWeight(name, shape, () => w.load(name));
  };
  /** A Linear layer: its weight transposed for MatMul, and its bias. */
  const linear = (x: string, relative: string, inFeatures: number, outFeatures: number, output?: string): string => {
    const { name } = w.checked(`${relative}.weight`, [outFeatures, inFeatures]);
    parameters += inFeatures * outFeatures;
    const weight = transposedWeight(g, name, inFeatures, outFeatures, () => w.load(name));
    return linearNodes(g, x, weight, tensor(`${relative}.bias`, [outFeatures]), relative, output);
  };
  const norm = (x: string, relative: string, width = H): string =>
    layerNorm(
      g,
      x,
      tensor(`${relative}.weight`, [width]),
      tensor(`${relative}.bias`, [width]),
      config.layerNormEps,
      relative,
    );

  const zero = g.ints('zero', [0], []);
  const one = g.ints('one', [1], []);
  const half = g.constant('half', [0.5]);
  const oneF = g.constant('one_f', [1]);

  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const inputs = [inputIds, attentionMask];
  let sequence: string | null = null;
  const ctx: EncoderContext = {
    g,
    config,
    names,
    inputIds,
    tensor,
    linear,
    zero,
    one,
    sequenceLength: () => {
      sequence ??= g.op('Gather', [g.op('Shape', [inputIds]), one], { axis: 0 }, { name: '/sequence_length' });
      return sequence;
    },
  };

  const sqrt2 = g.constant('sqrt2', [Math.SQRT2]);
  /** gelu_new's constants, made once when the first layer needs them. */
  let tanhConstants: { three: string; c: string; sqrt2OverPi: string } | null = null;
  const activate = (x: string, kind: Activation | 'tanh', name: string): string => {
    if (kind === 'relu') return g.op('Relu', [x], undefined, { name });
    if (kind === 'tanh') return g.op('Tanh', [x], undefined, { name });
    if (kind === 'gelu') return exactGelu(g, x, { sqrt2, one: oneF, half }, { erf: `${name}/Erf`, mul: `${name}/Mul` });
    // gelu_new: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).
    tanhConstants ??= {
      three: g.constant('three', [3]),
      c: g.constant('gelu_c', [0.044715]),
      sqrt2OverPi: g.constant('sqrt_2_over_pi', [Math.sqrt(2 / Math.PI)]),
    };
    const cube = g.op('Mul', [g.op('Pow', [x, tanhConstants.three]), tanhConstants.c]);
    const inner = g.op('Mul', [g.op('Add', [x, cube]), tanhConstants.sqrt2OverPi]);
    return g.op('Mul', [g.op('Mul', [x, g.op('Add', [g.op('Tanh', [inner]), oneF])]), half], undefined, {
      name: `${name}/Mul`,
    });
  };

  // Part: embeddings (word + positions + token types, LayerNorm, then a projection to the hidden size if narrower).
  const E = config.embeddingSize ?? H;
  const word = w.checked(`${names.wordEmbeddings}.weight`, [null, E]);
  const vocabSize = word.shape[0]!;
  parameters += vocabSize * E;
  let embedded = g.op(
    'Gather',
    [g.lazyWeight(word.name, word.shape, () => w.load(word.name)), inputIds],
    { axis: 0 },
    { name: '/embeddings/word/Gather' },
  );

  const positionTable = tensor(`${names.positionEmbeddings}.weight`, [config.maxPositions, E]);
  let positionIds: string;
  if (parts.positions === 'after-padding') {
    // Real tokens count up from padding_idx + 1; padding gets the padding index.
    const pad = g.ints('pad_id', [parts.paddingIndex ?? config.padTokenId], []);
    const notPad = g.op('Cast', [g.op('Not', [g.op('Equal', [inputIds, pad])])], { to: 7 });
    positionIds = g.op('Add', [g.op('Mul', [g.op('CumSum', [notPad, one]), notPad]), pad]);
  } else {
    positionIds = g.op('Range', [zero, ctx.sequenceLength(), one]);
  }
  embedded = g.op('Add', [
    embedded,
    g.op('Gather', [positionTable, positionIds], { axis: 0 }, { name: '/embeddings/position/Gather' }),
  ]);
  if (
    parts.tokenTypes !== 'none' &&
    names.tokenTypeEmbeddings &&
    config.typeVocabSize > 0 &&
    w.has(`${names.tokenTypeEmbeddings}.weight`)
  ) {
    const table = tensor(`${names.tokenTypeEmbeddings}.weight`, [config.typeVocabSize, E]);
    let typeIds = zero;
    if (parts.tokenTypes === 'input') {
      typeIds = g.input('token_type_ids', 'int64', ['batch', 'sequence']);
      inputs.push(typeIds);
    }
    embedded = g.op('Add', [
      embedded,
      g.op('Gather', [table, typeIds], { axis: 0 }, { name: '/embeddings/token_type/Gather' }),
    ]);
  }
  let hidden = norm(embedded, names.embeddingNorm, E);
  if (E !== H) {
    if (!names.embeddingProject)
      throw new KilnError('KILN_ERR_CONFIG_INVALID', {
        path: source.path,
        problem: `${config.architecture} has no projection from its embedding size ${E} to its hidden size ${H}`,
      });
    hidden = linear(hidden, names.embeddingProject, E, H);
  }

  // Part: the bias on every layer's attention scores. The padding mask in the form ONNX Runtime's
  // fusions know, (1 - mask) * -10000, plus the family's own (MPNet's relative positions).
  const maskFloat = g.op('Cast', [g.op('Unsqueeze', [attentionMask, g.ints('mask_axes', [1, 2])])], { to: 1 });
  let scoreBias = g.op('Mul', [g.op('Sub', [oneF, maskFloat]), g.constant('mask_fill', [-10000])], undefined, {
    name: '/attention_mask/Mul',
  });
  if (parts.attentionBias)
    scoreBias = g.op('Add', [scoreBias, parts.attentionBias(ctx)], undefined, { name: '/attention_bias/Add' });
  const shapes = attentionShapes(g, H, config.heads);

  // Part: post-norm layers (attention, residual, LayerNorm; feed-forward, residual, LayerNorm).
  for (let i = 0; i < config.layers; i += 1) {
    const n = names.layer(i);
    const projections = { query: n.query, key: n.key, value: n.value };
    const context = selfAttention(g, (which) => linear(hidden, projections[which], H, H), shapes, {
      maskBias: scoreBias,
      softmaxName: `/layer.${i}/attention/Softmax`,
    });
    hidden = norm(g.op('Add', [linear(context, n.attentionOutput, H, H), hidden]), n.attentionNorm);
    const expanded = activate(
      linear(hidden, n.intermediate, H, config.intermediate),
      config.activation,
      `/layer.${i}/activation`,
    );
    hidden = norm(g.op('Add', [linear(expanded, n.output, config.intermediate, H), hidden]), n.outputNorm);
  }

  if (config.head === 'none') {
    // A base model: the token states are the output; compile adds pooling for embeddings.
    g.op('Identity', [hidden], undefined, { name: '/last_hidden_state', output: 'last_hidden_state' });
    g.output('last_hidden_state', 'float', ['batch', 'sequence', H]);
    return { builder: g, inputs, parameters, vocabSize };
  }

  if (config.head === 'token') {
    // Token classification: one Linear on every token's state (HF runs dropout first, a no-op at inference).
    linear(hidden, withoutPrefix(names.tokenHead), H, config.labels, 'logits');
    g.output('logits', 'float', ['batch', 'sequence', config.labels]);
    return { builder: g, inputs, parameters, vocabSize };
  }

  if (config.head === 'span') {
    // Question answering: each token's start and end logits, the outputs Hugging Face's ONNX
    // exports name start_logits and end_logits [batch, sequence].
    const both = linear(hidden, names.spanHead, H, 2);
    for (const [index, output] of [
      [0, 'start_logits'],
      [1, 'end_logits'],
    ] as const) {
      g.op('Gather', [both, g.ints(`${output}_index`, [index], [])], { axis: 2 }, { name: `/head/${output}`, output });
      g.output(output, 'float', ['batch', 'sequence']);
    }
    return { builder: g, inputs, parameters, vocabSize };
  }

  // Part: the classification head on the first token ([CLS] or <s>): dense, activation, out.
  const first = g.op('Gather', [hidden, zero], { axis: 1 }, { name: '/head/first_token' });
  const dense = linear(first, withoutPrefix(names.head.dense), H, H);
  const headActivation = { Tanh: 'tanh', Relu: 'relu', Gelu: 'gelu' } as const;
  linear(
    activate(dense, headActivation[names.head.activation], '/head/activation'),
    withoutPrefix(names.head.out),
    H,
    config.labels,
    'logits',
  );
  g.output('logits', 'float', ['batch', config.labels]);

  return { builder: g, inputs, parameters, vocabSize };
}
