/** The list of CLI command modules. Add a command by adding its module here. */
import type { Command } from 'commander';
import * as circuit from './circuit.ts';
import * as compare from './compare.ts';
import * as demo from './demo.ts';
import * as download from './download.ts';
import * as logits from './logits.ts';
import * as lrp from './lrp.ts';
import * as patch from './patch.ts';
import * as view from './view.ts';
import * as worker from './worker.ts';

/** A CLI command module: registers one sub-command on the program. */
export interface CommandModule {
  register(program: Command): void;
}

export const commandModules: CommandModule[] = [demo, logits, patch, compare, lrp, circuit, view, download, worker];
