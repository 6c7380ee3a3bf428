import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerTrainCommand } from './train.command.js';

/** What `btd train` with these options writes to stderr when it refuses them before training. */
async function refusal(...options: string[]): Promise<string> {
  let written = '';
  const program = new Command('btd').exitOverride().configureOutput({ writeErr: (text) => (written += text) });
  registerTrainCommand(program);
  const parsed = program.parseAsync(['train', '--task', 'tumor-binary', '--data', '/no/such/folder', ...options], { from: 'user' });
  await expect(parsed).rejects.toBeInstanceOf(CommanderError);
  return written;
}

describe('btd train', () => {
  it.each([
    ['--lr', 'abc', 'expected a number above 0'],
    ['--lr', '0', 'expected a number above 0'],
    ['--lr', '-0.001', 'expected a number above 0'],
    ['--average-decay', 'abc', 'expected a number from 0 up to (not including) 1'],
    ['--average-decay', '1.5', 'expected a number from 0 up to (not including) 1'],
    // A model trained so would be refused at load: its manifest would record a limit sharp does not take.
    ['--clahe', '2.5', 'expected a whole number from 0 (off) to 100'],
    ['--clahe', '101', 'expected a whole number from 0 (off) to 100'],
  ])('refuses %s %s, naming the option, instead of training with it', async (option, value, reason) => {
    const error = await refusal(option, value);
    expect(error).toContain(`option '${option} <`);
    expect(error).toContain(`'${value}' is invalid`);
    expect(error).toContain(reason);
  });
});
