/** Every architecture kiln imports, one module per family (see module.ts): adding one is a file and a line here. */
import { BERT } from './bert.js';
import { DEBERTA_V2 } from './deberta-v2.js';
import { DISTILBERT } from './distilbert.js';
import { ELECTRA } from './electra.js';
import { MODERNBERT } from './modernbert.js';
import type { ArchitectureModule } from './module.js';
import { MPNET } from './mpnet.js';
import { ROBERTA } from './roberta.js';

export const ARCH_MODULES: readonly ArchitectureModule[] = [
  BERT,
  DISTILBERT,
  ROBERTA,
  MPNET,
  ELECTRA,
  DEBERTA_V2,
  MODERNBERT,
];

/** The module that builds `architecture` (config.json's architectures[0]), if one does. */
export function archModuleFor(architecture: string): ArchitectureModule | undefined {
  return ARCH_MODULES.find((m) => m.baseModels.includes(architecture) || m.heads.includes(architecture));
}
