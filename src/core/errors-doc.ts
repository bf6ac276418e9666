/** docs/errors.md, rendered from the error table so every code is documented. */
import { ERRORS } from './errors.js';

const AREAS: Array<[prefix: string, title: string]> = [
  ['KILN_ERR_CLI_', 'Command line'],
  ['KILN_ERR_SOURCE_', 'Model sources'],
  ['KILN_ERR_CONFIG_', 'Model sources'],
  ['KILN_ERR_ONNX_', 'ONNX graphs'],
  ['KILN_ERR_OP_', 'ONNX graphs'],
  ['KILN_ERR_MODEL_', 'ONNX graphs'],
  ['KILN_ERR_COMPILE_', 'ONNX graphs'],
  ['KILN_ERR_TOKENIZER_', 'ONNX graphs'],
  ['KILN_ERR_WEIGHTS_', 'Hugging Face checkpoints'],
  ['KILN_ERR_IMPORT_', 'Hugging Face checkpoints'],
  ['KILN_ERR_SYNTH_', 'Hugging Face checkpoints'],
  ['KILN_ERR_VERIFY_', 'Verification'],
  ['KILN_ERR_ARTIFACT_', 'Artifacts and the compile cache'],
  ['KILN_ERR_OUTPUT_', 'Artifacts and the compile cache'],
  ['KILN_ERR_CACHE_', 'Artifacts and the compile cache'],
  ['KILN_ERR_INPUT_', 'Inputs'],
  ['KILN_ERR_DATA_', 'Inputs'],
  ['KILN_ERR_BATCH_', 'Inputs'],
  ['KILN_ERR_RUNTIME_', 'Runtime'],
  ['KILN_ERR_QUEUE_', 'Runtime'],
  ['KILN_ERR_MEMORY_', 'Runtime'],
  ['KILN_ERR_TUNE_', 'Runtime'],
  ['KILN_ERR_MONITOR_', 'Watching a server'],
  ['KILN_ERR_SCHEDULER_', 'Runtime'],
  ['KILN_ERR_REPLICA_', 'Runtime'],
  ['KILN_ERR_HTTP_', 'HTTP server'],
  ['KILN_ERR_DEPLOY_', 'Deploying'],
  ['KILN_ERR_AWS_', 'Deploying'],
  ['KILN_ERR_SAGEMAKER_', 'Deploying'],
  ['KILN_ERR_INTERNAL', 'Other'],
];

export function areaOf(code: string): string {
  return AREAS.find(([prefix]) => code.startsWith(prefix))?.[1] ?? 'Other';
}

export function renderErrorsMarkdown(): string {
  const out = [
    '# kiln errors',
    '',
    '<!-- Generated from src/core/errors.ts by `npm run docs`; a test fails when this file is stale. Do not edit by hand. -->',
    '',
    'Every error kiln shows has a stable code. The command line prints one line,',
    '`kiln: error KILN_ERR_…: message`, and exits with status 1 (`KILN_DEBUG=1` adds the stack trace).',
    'The HTTP server answers with the status below and the body',
    '`{"error": {"code": "KILN_ERR_…", "message": "…"}}`. Messages name the value, the rule and the fix.',
    'Codes are never reused; a code that is retired stays listed.',
    '',
  ];
  const byArea = new Map<string, string[]>();
  for (const code of Object.keys(ERRORS)) {
    const area = areaOf(code);
    byArea.set(area, [...(byArea.get(area) ?? []), code]);
  }
  for (const [area, codes] of byArea) {
    out.push(`## ${area}`, '', '| code | HTTP | when |', '| --- | --- | --- |');
    for (const code of codes) {
      const entry = ERRORS[code as keyof typeof ERRORS];
      out.push(`| \`${code}\` | ${entry.status} | ${entry.when.replace(/\|/g, '\\|')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
