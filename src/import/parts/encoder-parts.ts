/**
 * What every part of an encoder built by parts shares (src/import/arch/): the graph, the
 * checkpoint's parameters by Hugging Face name (checked against the shapes config.json implies,
 * counted, streamed as lazy initializers) and the small pieces each part writes: Linear layers
 * with or without bias, LayerNorm with or without bias, activations, shared constants.
 */
import { KilnError } from '../../core/errors.js';
import { GraphBuilder } from '../../onnx/builder.js';
import type { WeightSource } from '../encoder-graph.js';
import { exactGelu, layerNorm, transposedWeight } from '../layers.js';

/** Activations by their transformers ACT2FN names. */
export const PART_ACTIVATIONS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'relu', 'tanh', 'silu', 'swish'] as const;
export type PartActivation = (typeof PART_ACTIVATIONS)[number];

const shapeText = (shape: ReadonlyArray<number | null>): string => `[${shape.map((d) => d ?? '?').join(', ')}]`;

export class EncoderParts {
  readonly g: GraphBuilder;
  /** Parameters read from the checkpoint so far. */
  parameters = 0;
  private readonly cache = new Map<string, string>();
  private readonly names = new Map<string, number>();

  /**
   * `prefix`: the base model's parameter prefix (`deberta.`); a name is looked up with it, then
   * without it (a base model saved alone, or a head outside the base model).
   */
  constructor(
    readonly source: WeightSource,
    readonly prefix: string,
    readonly architecture: string,
  ) {
    this.g = new GraphBuilder(architecture);
  }

  private resolve(relative: string): string | undefined {
    const candidates = [this.prefix + relative, relative];
    // Checkpoints converted from TensorFlow name LayerNorm parameters gamma and beta.
    if (relative.endsWith('.weight')) candidates.push(...candidates.map((c) => c.replace(/\.weight$/, '.gamma')));
    if (relative.endsWith('.bias')) candidates.push(...candidates.map((c) => c.replace(/\.bias$/, '.beta')));
    return candidates.find((c) => this.source.shape(c) !== undefined);
  }

  has(relative: string): boolean {
    return this.resolve(relative) !== undefined;
  }

  /** The checkpoint name of `relative` after checking its shape (null dims match anything). */
  checked(relative: string, expected: ReadonlyArray<number | null>): { name: string; shape: number[] } {
    const name = this.resolve(relative);
    if (!name)
      throw new KilnError('KILN_ERR_WEIGHTS_MISSING_TENSOR', {
        path: this.source.path,
        tensor: this.prefix + relative,
        architecture: this.architecture,
      });
    const shape = this.source.shape(name)!;
    if (shape.length !== expected.length || expected.some((d, i) => d !== null && d !== shape[i]))
      throw new KilnError('KILN_ERR_WEIGHTS_SHAPE', {
        path: this.source.path,
        tensor: name,
        expected: shapeText(expected),
        actual: shapeText(shape),
      });
    return { name, shape };
  }

  /** A parameter used as stored. */
  tensor(relative: string, expected: ReadonlyArray<number | null>): string {
    const { name, shape } = this.checked(relative, expected);
    return this.once(`tensor:${name}`, () => {
      this.parameters += shape.reduce((a, b) => a * b, 1);
      return this.g.lazyWeight(name, shape, () => this.source.load(name));
    });
  }

  /** A Linear layer `module` (weight [out, in], optional bias): MatMul by the transposed weight, then Add. */
  linear(x: string, module: string, inFeatures: number, outFeatures: number, options: LinearOptions = {}): string {
    const { name } = this.checked(`${module}.weight`, [outFeatures, inFeatures]);
    // A module applied twice (DeBERTa's shared key projection) stores its weight once.
    const weight = this.once(`linear:${name}`, () => {
      this.parameters += inFeatures * outFeatures;
      return transposedWeight(this.g, name, inFeatures, outFeatures, () => this.source.load(name));
    });
    const bias = options.bias ?? true;
    const product = this.g.op('MatMul', [x, weight], undefined, {
      name: this.nodeName(`/${module}/MatMul`),
      output: bias ? undefined : options.output,
    });
    if (!bias) return product;
    return this.g.op('Add', [product, this.tensor(`${module}.bias`, [outFeatures])], undefined, {
      name: this.nodeName(`/${module}/Add`),
      output: options.output,
    });
  }

  /** nn.LayerNorm `module` over the last axis; without bias (`bias: false`) the node has no shift input (optional in ONNX). */
  layerNorm(x: string, module: string, size: number, epsilon: number, options: { bias?: boolean } = {}): string {
    const scale = this.tensor(`${module}.weight`, [size]);
    if (options.bias ?? true)
      return layerNorm(this.g, x, scale, this.tensor(`${module}.bias`, [size]), epsilon, module);
    return this.g.op(
      'LayerNormalization',
      [x, scale],
      { axis: -1, epsilon: { float: epsilon } },
      { name: `/${module}/LayerNorm` },
    );
  }

  /** ACT2FN[`kind`] applied to `x`; `name` names its last node. */
  activation(x: string, kind: PartActivation, name: string): string {
    const g = this.g;
    switch (kind) {
      case 'gelu':
        return exactGelu(
          g,
          x,
          { sqrt2: this.float('sqrt2', Math.SQRT2), one: this.float('one_f', 1), half: this.float('half', 0.5) },
          { erf: `${name}/Erf`, mul: `${name}/Mul` },
        );
      case 'gelu_new':
      case 'gelu_pytorch_tanh': {
        // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).
        const cube = g.op('Mul', [g.op('Pow', [x, this.float('three', 3)]), this.float('gelu_c', 0.044715)]);
        const inner = g.op('Mul', [g.op('Add', [x, cube]), this.float('sqrt_2_over_pi', Math.sqrt(2 / Math.PI))]);
        return g.op(
          'Mul',
          [g.op('Mul', [x, g.op('Add', [g.op('Tanh', [inner]), this.float('one_f', 1)])]), this.float('half', 0.5)],
          undefined,
          {
            name: `${name}/Mul`,
          },
        );
      }
      case 'relu':
        return g.op('Relu', [x], undefined, { name });
      case 'tanh':
        return g.op('Tanh', [x], undefined, { name });
      case 'silu':
      case 'swish':
        return g.op('Mul', [x, g.op('Sigmoid', [x])], undefined, { name });
    }
  }

  /** `name`, or `name_2`, `name_3`… when a node of that name exists (a module applied twice). */
  nodeName(name: string): string {
    const count = (this.names.get(name) ?? 0) + 1;
    this.names.set(name, count);
    return count === 1 ? name : `${name}_${count}`;
  }

  /** A float scalar constant, made once per name. */
  float(name: string, value: number): string {
    return this.once(name, (n) => this.g.constant(n, [value]));
  }

  /** An int64 constant (a scalar when `dims` is []), made once per name. */
  int(name: string, values: number[], dims: number[] = [values.length]): string {
    return this.once(name, (n) => this.g.ints(n, values, dims));
  }

  /** A value computed once per graph under `key` (shared constants, the mask, position tables). */
  once(key: string, make: (key: string) => string): string {
    let value = this.cache.get(key);
    if (value === undefined) {
      value = make(key);
      this.cache.set(key, value);
    }
    return value;
  }
}

export interface LinearOptions {
  /** @defaultValue true */
  bias?: boolean;
  /** The graph tensor to write (a graph output such as `logits`). */
  output?: string;
}

/** Reads one ACT2FN name from config.json, or throws the coded error naming the field. */
export function activationField(
  raw: Record<string, unknown>,
  field: string,
  fallback: PartActivation,
  path: string,
): PartActivation {
  const value = raw[field] ?? fallback;
  if (typeof value === 'string' && (PART_ACTIVATIONS as readonly string[]).includes(value))
    return value as PartActivation;
  throw new KilnError('KILN_ERR_CONFIG_INVALID', {
    path,
    problem: `"${field}" is ${JSON.stringify(value)}; kiln builds ${PART_ACTIVATIONS.join(', ')}`,
  });
}

/** Typed config.json fields with their transformers defaults; each throws the coded error naming the field. */
export class ConfigFields {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly path: string,
    private readonly architecture: string,
  ) {}

  private invalid(field: string, rule: string): KilnError {
    return new KilnError('KILN_ERR_CONFIG_INVALID', {
      path: this.path,
      problem: `"${field}" must be ${rule} for ${this.architecture}, got ${JSON.stringify(this.raw[field])}`,
    });
  }

  /** An integer ≥ `min` (default 0). */
  int(field: string, fallback?: number, min = 0): number {
    const value = this.raw[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
      throw this.invalid(field, min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`);
    return value;
  }

  /** Any integer (transformers uses -1 for "unset"). */
  signedInt(field: string, fallback: number): number {
    const value = this.raw[field] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value)) throw this.invalid(field, 'an integer');
    return value;
  }

  positive(field: string, fallback: number): number {
    const value = this.raw[field] ?? fallback;
    if (typeof value !== 'number' || !(value > 0)) throw this.invalid(field, 'a positive number');
    return value;
  }

  bool(field: string, fallback: boolean): boolean {
    const value = this.raw[field] ?? fallback;
    if (typeof value !== 'boolean') throw this.invalid(field, 'true or false');
    return value;
  }

  oneOf<T extends string>(field: string, choices: readonly T[], fallback: T): T {
    const value = this.raw[field] ?? fallback;
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value))
      throw this.invalid(field, `one of ${choices.join(', ')}`);
    return value as T;
  }

  /** Refuses a field whose value kiln does not build, naming the field and what kiln builds. */
  refuse(field: string, problem: string): never {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path: this.path,
      problem: `"${field}" is ${JSON.stringify(this.raw[field])}: ${problem}`,
    });
  }
}
