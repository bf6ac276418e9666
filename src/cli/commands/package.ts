import { resolveArtifact } from '../../api/open.js';
import { DEFAULT_PACKAGE_FILE, packageArtifact } from '../../deploy/package.js';
import { compileNotice } from '../compile-notice.js';
import { formatBytes, table } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { defineCommand, nonEmpty } from '../table.js';

export const packageCommand = defineCommand({
  name: 'package',
  summary: 'Pack an artifact into a model.tar.gz for SageMaker (or any kiln ARTIFACT argument).',
  description:
    'Checks every file of the artifact against its SHA-256 in the manifest, then writes a gzipped tar whose root holds ' +
    "the artifact's files (manifest.json, model.onnx, the tokenizer files) with no folder prefix: what SageMaker " +
    'extracts into /opt/ml/model, where "kiln serve" in the container finds it. A SOURCE is compiled through the cache ' +
    'first. Every command that takes an ARTIFACT (serve, run, bench) also takes the .tar.gz: it is extracted once ' +
    'into $KILN_CACHE_DIR/packages/. Prints the files, the size and the SHA-256 of the tar.gz.',
  positionals: [
    {
      name: 'ARTIFACT',
      description: 'A compiled artifact folder, or a SOURCE to compile first (see kiln compile).',
      required: true,
    },
  ],
  flags: {
    out: {
      type: 'string',
      short: 'o',
      arg: 'FILE',
      description: 'Where to write the tar.gz; replaced if it exists.',
      default: DEFAULT_PACKAGE_FILE,
      parse: nonEmpty,
    },
    json: { type: 'boolean', description: 'Print {path, files, bytes, sha256} as one JSON object.', default: false },
    ...hubFlags,
  },
  examples: [
    { command: 'kiln package sentiment.kiln', note: 'write model.tar.gz for a SageMaker model' },
    {
      command: 'kiln package models/sst2-distilbert-tiny -o /tmp/sst2.tar.gz && kiln serve /tmp/sst2.tar.gz',
      note: 'compile, package, and serve the package',
    },
  ],
  async run({ positionals, flags }) {
    const artifactDir = await resolveArtifact(positionals.ARTIFACT![0]!, {
      onCompile: flags.json ? undefined : compileNotice,
      hub: { ...hubOptions(flags), quiet: flags.json },
    });
    const result = await packageArtifact({ artifactDir, out: flags.out });
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    process.stdout.write(
      `wrote ${result.path}\n${table([
        ['files', result.files.join(', ')],
        ['size', formatBytes(result.bytes)],
        ['sha256', result.sha256],
      ])}\n`,
    );
  },
});
