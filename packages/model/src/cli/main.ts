import { Command } from 'commander';
import { registerCalibrateCommand } from './calibrate.command.js';
import { registerEnsembleCommand } from './ensemble.command.js';
import { registerEvalCommand } from './eval.command.js';
import { registerLocateCommand } from './locate.command.js';
import { registerPredictCommand } from './predict.command.js';
import { registerSplitCommand } from './split.command.js';
import { registerTrainCommand } from './train.command.js';
import { registerTypicalityCommand } from './typicality.command.js';

const program = new Command('btd').description('brain tumour detection: train, evaluate and run the models').showHelpAfterError();
registerTrainCommand(program);
registerEvalCommand(program);
registerPredictCommand(program);
registerSplitCommand(program);
registerLocateCommand(program);
registerEnsembleCommand(program);
registerCalibrateCommand(program);
registerTypicalityCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`btd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
