/**
 * What `kiln serve` serves without an ARTIFACT, as Hugging Face's SageMaker containers decide:
 * the model folder SageMaker mounts, when it holds files; else the Hub model named by
 * HF_MODEL_ID (at HF_MODEL_REVISION; HF_TOKEN authenticates); else that folder if it exists.
 */
import { existsSync, readdirSync } from 'node:fs';

export function defaultModel(folder: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const present = existsSync(folder);
  if (present && readdirSync(folder).length > 0) return folder;
  const id = env.HF_MODEL_ID?.trim();
  if (id) {
    const revision = env.HF_MODEL_REVISION?.trim();
    return `hf:${id}${revision ? `@${revision}` : ''}`;
  }
  return present ? folder : null;
}
