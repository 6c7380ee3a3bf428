import type { Command } from 'commander';
import { addApiOptions, resolveConnection } from './api-options.js';
import { TrainingApiClient } from './training-api.client.js';
import { formatTrainingTable } from './training-table.js';

export function registerListCommand(program: Command): void {
  const command = program
    .command('list')
    .description('the most recent trainings, newest first')
    .option('--json', 'print the trainings as JSON instead of a table');
  addApiOptions(command).action(async (options: { api?: string; key?: string; json?: boolean }) => {
    const trainings = await new TrainingApiClient(resolveConnection(options)).list();
    process.stdout.write(options.json ? `${JSON.stringify(trainings, null, 2)}\n` : formatTrainingTable(trainings));
  });
}
