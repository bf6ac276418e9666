/** Which task a model does, from config.json's `architectures` (Hugging Face class names). */
import type { Task } from '../model/artifact.js';
import type { ModelConfig } from '../model/source.js';

/** The task an architecture name implies, or null when the name does not say. */
export function taskFromConfig(config: Pick<ModelConfig, 'architectures'>): Task | null {
  const name = config.architectures[0];
  if (!name) return null;
  if (name.endsWith('ForSequenceClassification')) return 'text-classification';
  if (name.endsWith('ForImageClassification')) return 'image-classification';
  // A base model (BertModel, XLMRobertaModel…) has no head: its use is its hidden states.
  if (/^[A-Z][A-Za-z0-9]*Model$/.test(name) && !name.endsWith('PreTrainedModel')) return 'feature-extraction';
  return null;
}
