/** Which task a model does, from config.json's `architectures` (Hugging Face class names). */
import { BASE_ENCODERS } from '../import/architectures.js';
import type { Task } from '../model/artifact.js';
import type { ModelConfig } from '../model/source.js';

/** The task an architecture name implies, or null when the name does not say. */
export function taskFromConfig(config: Pick<ModelConfig, 'architectures'>): Task | null {
  const name = config.architectures[0];
  if (!name) return null;
  if (name.endsWith('ForSequenceClassification')) return 'text-classification';
  if (name.endsWith('ForImageClassification')) return 'image-classification';
  // Other *Model names (GPT2Model, ViTModel, CLIPModel) are left to the graph to decide.
  if (BASE_ENCODERS.has(name)) return 'feature-extraction';
  return null;
}
