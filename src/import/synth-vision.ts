/**
 * `kiln synth` for image classifiers: ResNet-50 (v1.5, as torchvision and microsoft/resnet-50)
 * and ViT-B/16 (google/vit-base-patch16-224) at full size with deterministic random weights,
 * written straight to onnx/model.onnx in a Hugging Face-layout folder with the public
 * config.json and preprocessor_config.json. As with the text presets, predictions are
 * meaningless and every file says so.
 *
 * The graphs are what inference exports look like: batch norms folded into the convolutions
 * (running mean 0 and variance 1, so W' = W·γ/√(1+ε), b' = β), opset 17, input `pixel_values`
 * float32 [batch, 3, 224, 224], output `logits` [batch, labels].
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder } from '../onnx/builder.js';
import { writeModel } from '../onnx/writer.js';
import { IMPORT_OPSET } from './encoder-graph.js';
import { assertReplaceable } from './import.js';
import { attentionShapes, exactGelu, layerNorm, linearNodes, selfAttention, transposedWeight } from './layers.js';
import { presetNamed, randomStream, syntheticConfig, writeSyntheticFolder } from './synth.js';

export interface VisionPreset {
  /** Public config.json facts (labels are added per run). */
  config: Record<string, unknown>;
  /** Public preprocessor_config.json. */
  preprocessor: Record<string, unknown>;
  build: (labels: number, seed: number) => VisionGraph;
}

export interface VisionGraph {
  builder: GraphBuilder;
  /**
   * Parameters of the checkpoint the graph stands for, counted as PyTorch does: batch-norm γ and
   * β included (running statistics are buffers, not parameters), before folding.
   */
  parameters: number;
  /** One line for `kiln synth`'s summary. */
  summary: string;
}

const RESNET_EPS = 1e-5;
const IMAGE_SIZE = 224;

/** Normal numbers (Box–Muller over the tensor's own uniform stream), deterministic per name and seed. */
function normal(name: string, count: number, seed: number, std: number): Float32Array {
  const next = randomStream(name, seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const radius = std * Math.sqrt(-2 * Math.log(1 - next()));
    const angle = 2 * Math.PI * next();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

function uniform(name: string, count: number, seed: number, low: number, high: number): Float32Array {
  const next = randomStream(name, seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 1) out[i] = low + (high - low) * next();
  return out;
}

const pixelInput = (g: GraphBuilder): string => g.input('pixel_values', 'float', ['batch', 3, IMAGE_SIZE, IMAGE_SIZE]);

/**
 * ResNet-50 v1.5 (stride on the 3×3 convolution of each bottleneck), with Hugging Face's
 * parameter names. Convolutions: He-normal over fan-in (std √(2/fan_in)), which keeps the mean
 * square of activations through conv + ReLU. Batch norm γ: U[0.8, 1.2], except the last of each
 * residual branch, U[0.1, 0.3], so that 16 residual additions do not double the scale 16 times
 * (torchvision's zero_init_residual, softened so every branch still contributes); β: U[-0.1, 0.1].
 * The classifier: PyTorch's nn.Linear default, U(±1/√fan_in) for weight and bias.
 */
export function buildResNet50(labels: number, seed: number): VisionGraph {
  const g = new GraphBuilder('ResNetForImageClassification');
  let parameters = 0;

  const convBn = (
    x: string,
    prefix: string,
    cin: number,
    cout: number,
    k: number,
    stride: number,
    options: { relu: boolean; lastOfBranch?: boolean },
  ): string => {
    const fanIn = cin * k * k;
    parameters += cout * fanIn + 2 * cout;
    const gammaName = `${prefix}.normalization.weight`;
    const gamma = (): Float32Array =>
      options.lastOfBranch ? uniform(gammaName, cout, seed, 0.1, 0.3) : uniform(gammaName, cout, seed, 0.8, 1.2);
    const weight = g.lazyWeight(`${prefix}.convolution.weight`, [cout, cin, k, k], async () => {
      const w = normal(`${prefix}.convolution.weight`, cout * fanIn, seed, Math.sqrt(2 / fanIn));
      const scale = gamma();
      for (let o = 0; o < cout; o += 1) {
        const factor = scale[o]! / Math.sqrt(1 + RESNET_EPS);
        for (let i = o * fanIn; i < (o + 1) * fanIn; i += 1) w[i] = w[i]! * factor;
      }
      return w;
    });
    const bias = g.lazyWeight(`${prefix}.convolution.bias`, [cout], async () =>
      uniform(`${prefix}.normalization.bias`, cout, seed, -0.1, 0.1),
    );
    const pad = (k - 1) / 2;
    const y = g.op(
      'Conv',
      [x, weight, bias],
      { kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride] },
      { name: `/${prefix}/Conv` },
    );
    return options.relu ? g.op('Relu', [y], undefined, { name: `/${prefix}/Relu` }) : y;
  };

  let x = convBn(pixelInput(g), 'resnet.embedder.embedder', 3, 64, 7, 2, { relu: true });
  x = g.op(
    'MaxPool',
    [x],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] },
    { name: '/resnet/embedder/pooler/MaxPool' },
  );
  const depths = [3, 4, 6, 3];
  const widths = [256, 512, 1024, 2048];
  let channels = 64;
  for (const [stage, depth] of depths.entries()) {
    const out = widths[stage]!;
    const reduced = out / 4;
    for (let layer = 0; layer < depth; layer += 1) {
      const prefix = `resnet.encoder.stages.${stage}.layers.${layer}`;
      const stride = layer === 0 && stage > 0 ? 2 : 1;
      const shortcut =
        channels !== out || stride !== 1
          ? convBn(x, `${prefix}.shortcut`, channels, out, 1, stride, { relu: false })
          : x;
      let branch = convBn(x, `${prefix}.layer.0`, channels, reduced, 1, 1, { relu: true });
      branch = convBn(branch, `${prefix}.layer.1`, reduced, reduced, 3, stride, { relu: true });
      branch = convBn(branch, `${prefix}.layer.2`, reduced, out, 1, 1, { relu: false, lastOfBranch: true });
      x = g.op('Relu', [g.op('Add', [branch, shortcut], undefined, { name: `/${prefix}/Add` })], undefined, {
        name: `/${prefix}/Relu`,
      });
      channels = out;
    }
  }
  const pooled = g.op(
    'Flatten',
    [g.op('GlobalAveragePool', [x], undefined, { name: '/resnet/pooler/GlobalAveragePool' })],
    { axis: 1 },
    { name: '/classifier/Flatten' },
  );
  const bound = 1 / Math.sqrt(channels);
  const fcWeight = g.lazyWeight('classifier.1.weight', [labels, channels], async () =>
    uniform('classifier.1.weight', labels * channels, seed, -bound, bound),
  );
  const fcBias = g.lazyWeight('classifier.1.bias', [labels], async () =>
    uniform('classifier.1.bias', labels, seed, -bound, bound),
  );
  parameters += labels * channels + labels;
  g.op('Gemm', [pooled, fcWeight, fcBias], { transB: 1 }, { name: '/classifier/Gemm', output: 'logits' });
  g.output('logits', 'float', ['batch', labels]);
  return {
    builder: g,
    parameters,
    summary:
      'ResNetForImageClassification: ResNet-50 v1.5, bottlenecks [3, 4, 6, 3], widths [256, 512, 1024, 2048], batch norm folded',
  };
}

/**
 * ViT-B/16 at 224 × 224 with Hugging Face's parameter names: 196 patches + [CLS], 12 pre-norm
 * layers of hidden 768, 12 heads, MLP 3072 (exact GELU), classifier on [CLS] after the final
 * LayerNorm. Weights as Hugging Face initializes them: normal with std `initializer_range`
 * (0.02) for the patch projection, linear layers, [CLS] and position embeddings; biases 0;
 * LayerNorm 1 and 0.
 */
export function buildVitBase16(labels: number, seed: number): VisionGraph {
  const H = 768;
  const heads = 12;
  const layers = 12;
  const intermediate = 3072;
  const patch = 16;
  const tokens = (IMAGE_SIZE / patch) ** 2 + 1;
  const std = 0.02;
  const eps = 1e-12;
  const g = new GraphBuilder('ViTForImageClassification');
  let parameters = 0;

  const randomWeight = (name: string, dims: number[]): string => {
    const count = dims.reduce((a, b) => a * b, 1);
    parameters += count;
    return g.lazyWeight(name, dims, async () => normal(name, count, seed, std));
  };
  const filled = (name: string, count: number, value: number): string => {
    parameters += count;
    return g.lazyWeight(name, [count], async () => new Float32Array(count).fill(value));
  };
  const linear = (x: string, prefix: string, inFeatures: number, outFeatures: number, output?: string): string => {
    parameters += inFeatures * outFeatures;
    const weight = transposedWeight(g, `${prefix}.weight`, inFeatures, outFeatures, async () =>
      normal(`${prefix}.weight`, inFeatures * outFeatures, seed, std),
    );
    return linearNodes(g, x, weight, filled(`${prefix}.bias`, outFeatures, 0), prefix, output);
  };
  const norm = (x: string, prefix: string): string =>
    layerNorm(g, x, filled(`${prefix}.weight`, H, 1), filled(`${prefix}.bias`, H, 0), eps, prefix);

  const pixels = pixelInput(g);
  const projection = g.op(
    'Conv',
    [
      pixels,
      randomWeight('vit.embeddings.patch_embeddings.projection.weight', [H, 3, patch, patch]),
      filled('vit.embeddings.patch_embeddings.projection.bias', H, 0),
    ],
    { kernel_shape: [patch, patch], strides: [patch, patch] },
    { name: '/vit/embeddings/patch_embeddings/projection/Conv' },
  );
  const patches = g.op('Transpose', [g.op('Reshape', [projection, g.ints('patch_shape', [0, H, -1])])], {
    perm: [0, 2, 1],
  });
  // [CLS] broadcast over the batch: Expand to [batch, 1, 1].
  const batchShape = g.op(
    'Concat',
    [
      g.op('Slice', [g.op('Shape', [pixels]), g.ints('slice_start', [0]), g.ints('slice_end', [1])]),
      g.ints('cls_tail', [1, 1]),
    ],
    { axis: 0 },
  );
  const cls = g.op('Expand', [randomWeight('vit.embeddings.cls_token', [1, 1, H]), batchShape]);
  let hidden = g.op(
    'Add',
    [g.op('Concat', [cls, patches], { axis: 1 }), randomWeight('vit.embeddings.position_embeddings', [1, tokens, H])],
    undefined,
    { name: '/vit/embeddings/Add' },
  );

  const shapes = attentionShapes(g, H, heads);
  const sqrt2 = g.constant('sqrt2', [Math.SQRT2]);
  const half = g.constant('half', [0.5]);
  const one = g.constant('one_f', [1]);
  for (let i = 0; i < layers; i += 1) {
    const p = `vit.encoder.layer.${i}`;
    const normed = norm(hidden, `${p}.layernorm_before`);
    const context = selfAttention(g, (which) => linear(normed, `${p}.attention.attention.${which}`, H, H), shapes, {
      maskBias: null,
      softmaxName: `/${p}/attention/Softmax`,
    });
    hidden = g.op('Add', [linear(context, `${p}.attention.output.dense`, H, H), hidden]);
    const up = linear(norm(hidden, `${p}.layernorm_after`), `${p}.intermediate.dense`, H, intermediate);
    const activated = exactGelu(g, up, { sqrt2, one, half }, { mul: `/${p}/intermediate/Gelu` });
    hidden = g.op('Add', [linear(activated, `${p}.output.dense`, intermediate, H), hidden]);
  }
  const first = g.op(
    'Gather',
    [norm(hidden, 'vit.layernorm'), g.ints('zero', [0], [])],
    { axis: 1 },
    { name: '/vit/first_token' },
  );
  linear(first, 'classifier', H, labels, 'logits');
  g.output('logits', 'float', ['batch', labels]);
  return {
    builder: g,
    parameters,
    summary: `ViTForImageClassification: ViT-B/16, ${layers} layers, hidden ${H}, ${heads} heads, MLP ${intermediate}, ${tokens} tokens`,
  };
}

/** preprocessor_config.json of a preset: its resizing, then rescaling to [0, 1] and normalizing, as every preset does. */
const preprocessor = (
  type: string,
  resize: Record<string, unknown>,
  mean: number[],
  std: number[],
): Record<string, unknown> => ({
  image_processor_type: type,
  do_resize: true,
  ...resize,
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: mean,
  image_std: std,
});

export const VISION_PRESETS: Record<string, VisionPreset> = {
  'resnet-50': {
    config: {
      architectures: ['ResNetForImageClassification'],
      model_type: 'resnet',
      num_channels: 3,
      embedding_size: 64,
      hidden_sizes: [256, 512, 1024, 2048],
      depths: [3, 4, 6, 3],
      layer_type: 'bottleneck',
      hidden_act: 'relu',
      downsample_in_first_stage: false,
    },
    preprocessor: preprocessor(
      'ConvNextImageProcessor',
      { size: { shortest_edge: 224 }, crop_pct: 0.875, resample: 3 },
      [0.485, 0.456, 0.406],
      [0.229, 0.224, 0.225],
    ),
    build: buildResNet50,
  },
  'vit-base-patch16-224': {
    config: {
      architectures: ['ViTForImageClassification'],
      model_type: 'vit',
      hidden_size: 768,
      num_hidden_layers: 12,
      num_attention_heads: 12,
      intermediate_size: 3072,
      hidden_act: 'gelu',
      hidden_dropout_prob: 0.0,
      attention_probs_dropout_prob: 0.0,
      initializer_range: 0.02,
      layer_norm_eps: 1e-12,
      image_size: 224,
      patch_size: 16,
      num_channels: 3,
      qkv_bias: true,
    },
    preprocessor: preprocessor(
      'ViTImageProcessor',
      { size: { height: 224, width: 224 }, resample: 2 },
      [0.5, 0.5, 0.5],
      [0.5, 0.5, 0.5],
    ),
    build: buildVitBase16,
  },
};

export interface VisionSynthOptions {
  preset: string;
  out: string;
  /** @defaultValue 0 */
  seed?: number;
  /** Number of classes. @defaultValue 1000 */
  labels?: number;
  onTensor?: (written: number, total: number, name: string) => void;
}

export interface VisionSynthResult {
  out: string;
  architecture: string;
  /** Parameters as PyTorch counts them before batch norm is folded (see {@link VisionGraph}). */
  parameters: number;
  summary: string;
}

/** Writes `options.out`: onnx/model.onnx, config.json, preprocessor_config.json and a README. */
export async function synthesizeVision(options: VisionSynthOptions): Promise<VisionSynthResult> {
  const preset = presetNamed(VISION_PRESETS, options.preset);
  const model = { preset: options.preset, seed: options.seed ?? 0, labels: options.labels ?? 1000 };
  const built = preset.build(model.labels, model.seed);
  await assertReplaceable(options.out);
  await writeSyntheticFolder(options.out, model, syntheticConfig(preset.config, model), async (staging) => {
    await writeFile(join(staging, 'preprocessor_config.json'), `${JSON.stringify(preset.preprocessor, null, 2)}\n`);
    await mkdir(join(staging, 'onnx'));
    await writeModel(join(staging, 'onnx', 'model.onnx'), built.builder, { '': IMPORT_OPSET }, options.onTensor);
  });
  return {
    out: options.out,
    architecture: (preset.config.architectures as string[])[0]!,
    parameters: built.parameters,
    summary: built.summary,
  };
}
