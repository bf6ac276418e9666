import { type Manifest, readArtifact } from '../../model/artifact.js';
import {
  agreementOf,
  deltaOf,
  describeImage,
  formatBytes,
  formatCount,
  precisionRows,
  pruningRows,
  scoresRow,
  sum,
  table,
} from '../format.js';
import { defineCommand } from '../table.js';

function operatorTable(m: Manifest): string {
  const { source, optimized } = m.model.operators;
  const names = [...new Set([...Object.keys(source), ...Object.keys(optimized)])].sort(
    (a, b) => (optimized[b] ?? 0) + (source[b] ?? 0) - (optimized[a] ?? 0) - (source[a] ?? 0) || a.localeCompare(b),
  );
  const width = Math.max(8, ...names.map((n) => n.length));
  const rows = names.map(
    (n) => `    ${n.padEnd(width)}  ${String(source[n] ?? 0).padStart(6)}  ${String(optimized[n] ?? 0).padStart(9)}`,
  );
  return [
    `    ${'operator'.padEnd(width)}  ${'source'.padStart(6)}  ${'optimized'.padStart(9)}`,
    ...rows,
    `    ${'total'.padEnd(width)}  ${String(sum(source)).padStart(6)}  ${String(sum(optimized)).padStart(9)}`,
  ].join('\n');
}

export function renderManifest(dir: string, m: Manifest): string {
  const q = m.quantization;
  const v = m.verify;
  const lines = [
    `${m.name} (${dir})`,
    table([
      ['format', `${m.format} v${m.formatVersion}`],
      [
        'task',
        m.labels.length > 0
          ? `${m.task}; labels ${m.labels.length > 12 ? `${m.labels.slice(0, 12).join(', ')} … (${m.labels.length})` : m.labels.join(', ')}`
          : m.task,
      ],
      ...(m.embedding
        ? [
            [
              'embedding',
              `${m.embedding.dimension} dimensions, ${m.embedding.pooling} pooling, ${m.embedding.normalize ? 'L2-normalized' : 'not normalized'}`,
            ] as [string, string],
          ]
        : []),
      ...(m.functionToApply ? [['scores', scoresRow(m.functionToApply)] as [string, string]] : []),
      ...(m.synthetic ? [['weights', `SYNTHETIC: ${m.synthetic}`] as [string, string]] : []),
      ['source', `${m.source.kind} ${m.source.path} (sha256 ${m.source.sha256.slice(0, 16)}…)`],
      ['parameters', `${formatCount(m.model.parameters)} (${m.model.parameters.toLocaleString('en-US')})`],
      ...pruningRows(m),
      ...precisionRows(m),
      ['inputs', m.model.inputs.map((i) => `${i.name} ${i.type} [${(i.shape ?? []).join(', ')}]`).join('; ')],
      ['outputs', m.model.outputs.map((o) => `${o.name} ${o.type} [${(o.shape ?? []).join(', ')}]`).join('; ')],
      ...(m.image ? [['image', describeImage(m.image)] as [string, string]] : []),
      [
        'limits',
        m.image
          ? `max batch ${m.limits.maxBatch} images`
          : `max length ${m.limits.maxLength}, max batch ${m.limits.maxBatch}, buckets ${(m.limits.buckets ?? []).join(',')}`,
      ],
      ...(m.tokenizer
        ? [
            [
              'tokenizer',
              `${m.tokenizer.file}, pad id ${m.tokenizer.padTokenId}, ${m.tokenizer.specialTokensTotal} special tokens per text`,
            ] as [string, string],
          ]
        : []),
      [
        'fusions',
        `attention ${m.model.fusions.attention}, layer norm ${m.model.fusions.layerNorm}, GELU ${m.model.fusions.gelu}, MatMul/Gemm ${m.model.fusions.matmul}`,
      ],
      [
        'compiled',
        `${m.compile.createdAt} in ${(m.compile.durationMs / 1000).toFixed(2)} s; ${m.compile.backend} on ${m.compile.target.cpu} (${m.compile.target.platform}/${m.compile.target.arch})`,
      ],
      ['versions', `kiln ${m.versions.kiln}, ONNX Runtime ${m.versions.onnxruntime}, Node ${m.versions.node}`],
      [
        'files',
        Object.entries(m.files)
          .map(([name, f]) => `${name} ${formatBytes(f.bytes)}`)
          .join(', '),
      ],
    ]),
    '  operators (source → optimized):',
    operatorTable(m),
  ];
  if (q) {
    lines.push(
      '  quantization:',
      table(
        [
          [
            'quantized',
            `${q.quantized.length} nodes${q.quantized.length ? `: ${q.quantized.slice(0, 6).join(', ')}${q.quantized.length > 6 ? ', …' : ''}` : ''}`,
          ],
          ['kept fp32', q.kept.length ? q.kept.join(', ') : 'none'],
          ['embeddings', q.embeddings.length ? q.embeddings.join(', ') : 'fp32'],
          [
            'weights',
            `${formatBytes(q.weightBytes.before)} → ${formatBytes(q.weightBytes.after)}; ${(q.quantizedFraction * 100).toFixed(1)} % of weight values in 8 bits`,
          ],
        ],
        '    ',
      ),
    );
  }
  if (v) {
    lines.push(
      '  verify:',
      table(
        [
          ['data', `${v.data} (${v.rows} rows)`],
          ...(v.accuracy
            ? [
                [
                  'accuracy',
                  `fp32 source ${(v.accuracy.reference * 100).toFixed(2)} %, compiled ${(v.accuracy.compiled * 100).toFixed(2)} %, drop ${v.accuracy.drop.toFixed(2)} pt (limit ${v.limits.maxAccuracyDrop})`,
                ] as [string, string],
              ]
            : []),
          ['agreement', `${agreementOf(v)} (${v.flippedCount} rows flipped)`],
          [deltaOf(v), `max ${v.maxAbsLogitDelta.toExponential(2)}, mean ${v.meanAbsLogitDelta.toExponential(2)}`],
          ...v.flipped.map((f): [string, string] => [
            'flipped',
            `line ${f.line}: ${f.reference} → ${f.compiled}${f.gold ? ` (gold ${f.gold})` : ''}: ${f.text}`,
          ]),
        ],
        '    ',
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: "Print an artifact's manifest: model, operators, precision, verify report.",
  description:
    'Reads manifest.json (without loading the model) and prints it readably: task and labels, inputs and outputs, limits, ' +
    'operator counts before and after optimization, fused kernels, what int8 compilation quantized, the verify report ' +
    'with flipped rows, files and versions. --json prints the manifest as it is.',
  positionals: [{ name: 'ARTIFACT', description: 'A compiled artifact folder.', required: true }],
  flags: {
    json: { type: 'boolean', description: 'Print manifest.json as one JSON object.', default: false },
  },
  examples: [
    { command: 'kiln inspect sst2-distilbert-tiny.kiln', note: 'what is in the artifact, readably' },
    { command: 'kiln inspect sentiment-int8.kiln --json | jq .verify', note: 'the verify report, for a script' },
  ],
  async run({ positionals, flags }) {
    const { dir, manifest } = await readArtifact(positionals.ARTIFACT![0]!, { verify: false });
    process.stdout.write(flags.json ? `${JSON.stringify(manifest)}\n` : renderManifest(dir, manifest));
  },
});
