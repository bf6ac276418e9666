// int8 --verify on SST-2 for MPNet and ELECTRA classifiers that look trained (the encoders issue):
// no trained MPNet or ELECTRA checkpoint can be downloaded here, so the embedded SST-2 DistilBERT's
// trained weights are written under each architecture's Hugging Face names. The encoders compute
// the same function as DistilBERT's (ELECTRA: token type rows of zeros; MPNet: the position table
// shifted by its 2 padding slots, a relative position bias of zeros); the heads differ in their
// activation (ELECTRA's GELU, MPNet's tanh, where DistilBERT's is ReLU), so accuracy is near, not
// equal to, the original's 80.4 %. Each is compiled int8 with --verify on the 872 dev sentences.
//   node encoder-transplant.mjs
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DIST, ROOT, scratch } from './lib.mjs';

const { Checkpoint, writeSafetensors } = await import(`${DIST}/model/safetensors.js`);
const { compile } = await import(`${DIST}/compiler/compile.js`);

const SOURCE = join(ROOT, 'models', 'sst2-distilbert-tiny');
const DEV = join(ROOT, 'data', 'sst2', 'dev.tsv');

const checkpoint = await Checkpoint.open(SOURCE);
const tensors = new Map();
for (const name of checkpoint.names())
  tensors.set(name, { shape: checkpoint.entry(name).shape, data: await checkpoint.read(name, { architecture: 'x' }) });
await checkpoint.close();
const get = (name) => tensors.get(name);
const H = get('distilbert.embeddings.LayerNorm.weight').shape[0];
const LAYERS = 4;
const zeros = (...shape) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

/** DistilBERT's layer modules → the target's, for one layer's prefix. */
function layers(prefix, names) {
  const out = {};
  for (let i = 0; i < LAYERS; i += 1)
    for (const [from, to] of Object.entries(names(i)))
      for (const part of ['weight', 'bias'])
        out[`${prefix}${to}.${part}`] = get(`distilbert.transformer.layer.${i}.${from}.${part}`);
  return out;
}
const head = {
  'classifier.dense.weight': get('pre_classifier.weight'),
  'classifier.dense.bias': get('pre_classifier.bias'),
  'classifier.out_proj.weight': get('classifier.weight'),
  'classifier.out_proj.bias': get('classifier.bias'),
};
const embeddingNorm = (prefix) => ({
  [`${prefix}embeddings.LayerNorm.weight`]: get('distilbert.embeddings.LayerNorm.weight'),
  [`${prefix}embeddings.LayerNorm.bias`]: get('distilbert.embeddings.LayerNorm.bias'),
});
const bertLayer = (i) => ({
  'attention.q_lin': `encoder.layer.${i}.attention.self.query`,
  'attention.k_lin': `encoder.layer.${i}.attention.self.key`,
  'attention.v_lin': `encoder.layer.${i}.attention.self.value`,
  'attention.out_lin': `encoder.layer.${i}.attention.output.dense`,
  sa_layer_norm: `encoder.layer.${i}.attention.output.LayerNorm`,
  'ffn.lin1': `encoder.layer.${i}.intermediate.dense`,
  'ffn.lin2': `encoder.layer.${i}.output.dense`,
  output_layer_norm: `encoder.layer.${i}.output.LayerNorm`,
});
const mpnetLayer = (i) => ({
  'attention.q_lin': `encoder.layer.${i}.attention.attn.q`,
  'attention.k_lin': `encoder.layer.${i}.attention.attn.k`,
  'attention.v_lin': `encoder.layer.${i}.attention.attn.v`,
  'attention.out_lin': `encoder.layer.${i}.attention.attn.o`,
  sa_layer_norm: `encoder.layer.${i}.attention.LayerNorm`,
  'ffn.lin1': `encoder.layer.${i}.intermediate.dense`,
  'ffn.lin2': `encoder.layer.${i}.output.dense`,
  output_layer_norm: `encoder.layer.${i}.output.LayerNorm`,
});
const positions = get('distilbert.embeddings.position_embeddings.weight');
const shifted = zeros(positions.shape[0] + 2, H);
shifted.data.set(positions.data, 2 * H);

const common = {
  vocab_size: 30522,
  hidden_size: H,
  num_hidden_layers: LAYERS,
  num_attention_heads: 4,
  intermediate_size: 4 * H,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' },
  label2id: { NEGATIVE: 0, POSITIVE: 1 },
};
const models = {
  electra: {
    config: {
      ...common,
      architectures: ['ElectraForSequenceClassification'],
      model_type: 'electra',
      embedding_size: H,
      max_position_embeddings: positions.shape[0],
      type_vocab_size: 2,
      pad_token_id: 0,
    },
    weights: {
      'electra.embeddings.word_embeddings.weight': get('distilbert.embeddings.word_embeddings.weight'),
      'electra.embeddings.position_embeddings.weight': positions,
      'electra.embeddings.token_type_embeddings.weight': zeros(2, H),
      ...embeddingNorm('electra.'),
      ...layers('electra.', bertLayer),
      ...head,
    },
  },
  mpnet: {
    config: {
      ...common,
      architectures: ['MPNetForSequenceClassification'],
      model_type: 'mpnet',
      max_position_embeddings: positions.shape[0] + 2,
      relative_attention_num_buckets: 32,
      pad_token_id: 1,
    },
    weights: {
      'mpnet.embeddings.word_embeddings.weight': get('distilbert.embeddings.word_embeddings.weight'),
      'mpnet.embeddings.position_embeddings.weight': shifted,
      ...embeddingNorm('mpnet.'),
      'mpnet.encoder.relative_attention_bias.weight': zeros(32, 4),
      ...layers('mpnet.', mpnetLayer),
      ...head,
    },
  },
};

const { dir, cleanup } = await scratch('kiln-transplant-');
process.env.KILN_CACHE_DIR = join(dir, 'cache');
console.log(`CPU: ${cpus()[0]?.model} × ${cpus().length}`);
try {
  for (const [name, { config, weights }] of Object.entries(models)) {
    const folder = join(dir, name);
    await mkdir(folder);
    await writeFile(join(folder, 'config.json'), JSON.stringify(config));
    for (const file of ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt'])
      await cp(join(SOURCE, file), join(folder, file));
    await writeSafetensors(
      join(folder, 'model.safetensors'),
      Object.entries(weights).map(([n, w]) => ({ name: n, dtype: 'F32', shape: w.shape, data: () => w.data })),
    );
    const { manifest } = await compile({
      source: folder,
      out: join(dir, `${name}.kiln`),
      precision: 'int8',
      verify: DEV,
    });
    const v = manifest.verify;
    const pct = (x) => `${(100 * x).toFixed(2)} %`;
    console.log(
      `${config.architectures[0]}: fp32 ${pct(v.accuracy.reference)}, int8 ${pct(v.accuracy.compiled)} ` +
        `(drop ${v.accuracy.drop.toFixed(2)} pt, limit ${v.limits.maxAccuracyDrop}), agreement ${pct(v.agreement)}, ` +
        `max |Δlogit| ${v.maxAbsLogitDelta.toFixed(4)} on ${v.rows} SST-2 dev sentences: --verify passed`,
    );
  }
} finally {
  await cleanup();
}
