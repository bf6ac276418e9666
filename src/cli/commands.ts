/** The one table of kiln's commands, in the order help lists them. */

import { batchCommand } from './commands/batch.js';
import { benchCommand } from './commands/bench.js';
import { cacheClearCommand, cacheLsCommand, cachePathCommand } from './commands/cache.js';
import { compileCommand } from './commands/compile.js';
import { deployK8sCommand } from './commands/deploy-k8s.js';
import { deploySageMakerCommand } from './commands/deploy-sagemaker.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { monitorCommand, topCommand } from './commands/monitor.js';
import { packageCommand } from './commands/package.js';
import { pullCommand } from './commands/pull.js';
import { runCommand } from './commands/run.js';
import { serveCommand } from './commands/serve.js';
import { synthCommand } from './commands/synth.js';
import { tuneCommand } from './commands/tune.js';
import type { CommandSpec } from './table.js';

export const COMMANDS: readonly CommandSpec[] = [
  compileCommand,
  pullCommand,
  inspectCommand,
  runCommand,
  serveCommand,
  benchCommand,
  tuneCommand,
  batchCommand,
  packageCommand,
  topCommand,
  monitorCommand,
  importCommand,
  synthCommand,
  cacheLsCommand,
  cacheClearCommand,
  cachePathCommand,
  deployK8sCommand,
  deploySageMakerCommand,
];
