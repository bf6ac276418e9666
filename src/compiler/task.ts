/** Which task a model does, from config.json's `architectures` (Hugging Face class names). */
import type { Task } from '../model/artifact.js';
import type { ModelConfig } from '../model/source.js';

/** The task an architecture name implies, or null when the name does not say. */
export function taskFromConfig(config: Pick<ModelConfig, 'architectures'>): Task | null {
  const name = config.architectures[0];
  if (!name) return null;
  if (name.endsWith('ForSequenceClassification')) return 'text-classification';
  if (name.endsWith('ForImageClassification')) return 'image-classification';
  // A text encoder without a head (BertModel, XLMRobertaModel…): its use is its hidden states.
  // Other *Model names (GPT2Model, ViTModel, CLIPModel) are left to the graph to decide.
  if (TEXT_ENCODERS.has(name)) return 'feature-extraction';
  return null;
}

/** Base text encoders whose token states sentence embedders pool (Hugging Face class names). */
const TEXT_ENCODERS: ReadonlySet<string> = new Set([
  'BertModel',
  'DistilBertModel',
  'RobertaModel',
  'XLMRobertaModel',
  'CamembertModel',
  'MPNetModel',
  'ElectraModel',
  'AlbertModel',
  'DebertaModel',
  'DebertaV2Model',
  'NomicBertModel',
]);
