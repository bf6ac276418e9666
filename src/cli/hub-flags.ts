/** Flags of the commands that take a SOURCE, for Hub models (`hf:ORG/NAME[@REV]`). */
import type { PullOptions } from '../hub/pull.js';
import { WEIGHTS_CHOICES, type WeightsChoice } from '../hub/select-files.js';
import { choice, deferredFlag, type FlagSpec, nonEmpty, nullFlag } from './table.js';

export const hubFlags = {
  token: nullFlag({
    arg: 'TOKEN',
    description:
      'Hugging Face token for a private or gated Hub model; sent only to HF_ENDPOINT, never printed. Prefer HF_TOKEN: a flag shows in the process list.',
    defaultText: '$HF_TOKEN, $HUGGING_FACE_HUB_TOKEN or the token file of hf auth login',
    parse: nonEmpty,
  }),
  offline: {
    type: 'boolean',
    description: 'Hub models: use only the local Hub cache and make no request (as HF_HUB_OFFLINE=1).',
    default: false,
  } satisfies FlagSpec<boolean>,
  weights: deferredFlag({
    arg: 'W',
    description: 'Hub models: which weights to download, onnx (onnx/model.onnx) or safetensors (imported on the way).',
    defaultText: 'onnx when the repo has onnx/model.onnx, else safetensors',
    parse: choice<WeightsChoice>(WEIGHTS_CHOICES),
  }),
};

/** The pull options those flags give. */
export function hubOptions(flags: {
  token: string | null;
  offline: boolean;
  weights: WeightsChoice | undefined;
}): PullOptions {
  return { token: flags.token, offline: flags.offline, weights: flags.weights };
}
