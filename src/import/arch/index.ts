/** The architectures built by parts, one module per family (see module.ts). */
import { DEBERTA_V2 } from './deberta-v2.js';
import { MODERNBERT } from './modernbert.js';
import type { ArchitectureModule } from './module.js';

export const ARCH_MODULES: readonly ArchitectureModule[] = [DEBERTA_V2, MODERNBERT];

/** The module that builds `architecture` (config.json's architectures[0]), if one does. */
export function archModuleFor(architecture: string): ArchitectureModule | undefined {
  return ARCH_MODULES.find((m) => m.baseModels.includes(architecture) || m.heads.includes(architecture));
}
