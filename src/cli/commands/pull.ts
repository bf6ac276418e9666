import { KilnError } from '../../core/errors.js';
import { hubModelFor, pullModel } from '../../hub/pull.js';
import { formatBytes } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { defineCommand } from '../table.js';

export const pullCommand = defineCommand({
  name: 'pull',
  summary: 'Download a model from the Hugging Face Hub into the local Hub cache; print its folder.',
  description:
    'Fetches only what kiln needs (config, tokenizer, preprocessor and sentence-transformers files, and one set of weights: ' +
    'onnx/model.onnx with its external data, else model.safetensors or its shards) into the cache Python huggingface_hub uses ' +
    '($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), as models--ORG--NAME/snapshots/<commit>. LFS files are ' +
    'checked against their SHA-256 before they appear there. Prints the snapshot folder. A pinned commit already cached makes ' +
    'no request; a branch costs one. HF_ENDPOINT selects a mirror, HF_TOKEN authenticates, HF_HUB_OFFLINE=1 (or --offline) ' +
    'uses only the cache. Every command that takes a SOURCE pulls the same way.',
  positionals: [
    {
      name: 'SOURCE',
      description:
        'hf:ORG/NAME[@REVISION] or hf:NAME (REVISION: branch, tag or commit sha; default main). A bare ORG/NAME[@REVISION] works too when no local path has that name.',
      required: true,
    },
  ],
  flags: {
    ...hubFlags,
    json: {
      type: 'boolean',
      description:
        'Print one JSON object (repo, revision, commit, snapshot folder, files, what was downloaded) and no progress.',
      default: false,
    },
  },
  examples: [
    {
      command: 'kiln pull hf:sentence-transformers/all-MiniLM-L6-v2',
      note: 'download the ONNX graph, tokenizer and pooling config; print the snapshot folder',
    },
    {
      command: 'HF_HUB_OFFLINE=1 kiln pull hf:distilbert/distilbert-base-uncased-finetuned-sst-2-english@main --json',
      note: 'what the cache holds for that branch, without any request',
    },
  ],
  async run({ positionals, flags }) {
    const source = positionals.SOURCE![0]!;
    const model = await hubModelFor(source);
    if (!model)
      throw new KilnError('KILN_ERR_HUB_INVALID_ID', {
        source,
        problem: 'it is a local path; kiln pull downloads Hub models (compile a local folder directly)',
      });
    const snapshot = await pullModel(model, { ...hubOptions(flags), quiet: flags.json });
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({
          repo: snapshot.repo,
          revision: snapshot.revision,
          commit: snapshot.commit,
          endpoint: snapshot.endpoint,
          snapshot: snapshot.dir,
          files: snapshot.files,
          downloaded: snapshot.downloaded,
          from: snapshot.from,
        })}\n`,
      );
      return;
    }
    const total = snapshot.files.reduce((n, f) => n + f.size, 0);
    const fetched =
      snapshot.downloaded.files > 0
        ? `downloaded ${snapshot.downloaded.files} (${formatBytes(snapshot.downloaded.bytes)})`
        : 'all from the cache';
    process.stderr.write(
      `kiln: ${snapshot.repo}@${snapshot.revision} is commit ${snapshot.commit}: ${snapshot.files.length} files, ${formatBytes(total)}; ${fetched}\n`,
    );
    process.stdout.write(`${snapshot.dir}\n`);
  },
});
