import type { Command } from 'commander';
import { addApiOptions, resolveConnection } from './api-options.js';
import { TrainingApiClient } from './training-api.client.js';

export function registerCancelCommand(program: Command): void {
  const command = program
    .command('cancel')
    .description('cancel a queued or running training (admin key); prints it as JSON, cancelled, or cancelling until its trainer stops it')
    .argument('<id>', 'training id, e.g. training-3f2a...');
  addApiOptions(command).action(async (id: string, options: { api?: string; key?: string }) => {
    const training = await new TrainingApiClient(resolveConnection(options)).cancel(id);
    process.stdout.write(`${JSON.stringify(training, null, 2)}\n`);
  });
}
