import { Command } from 'commander';
import { registerCancelCommand } from './cancel.command.js';
import { registerListCommand } from './list.command.js';
import { registerStartCommand } from './start.command.js';
import { registerWatchCommand } from './watch.command.js';

const program = new Command('btd-trainer')
  .description('start trainings through the btd API and follow them')
  .showHelpAfterError('(add --help for the options)');
registerStartCommand(program);
registerWatchCommand(program);
registerListCommand(program);
registerCancelCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`btd-trainer: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
