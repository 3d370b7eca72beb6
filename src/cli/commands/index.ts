/** The list of CLI command modules. Add a command by adding its module here. */
import type { Command } from 'commander';

/** A CLI command module: registers one sub-command on the program. */
export interface CommandModule {
  register(program: Command): void;
}

export const commandModules: CommandModule[] = [];
