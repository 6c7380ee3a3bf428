import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/index.js';

/** The documents whose commands are checked. */
const DOCUMENTS = [
  'README.md',
  ...readdirSync(path.join(REPO_ROOT, 'services'))
    .map((service) => `services/${service}/README.md`)
    .filter((file) => readdirSync(path.join(REPO_ROOT, path.dirname(file))).includes('README.md')),
  ...readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** The command lines and their sub-commands. */
const TOOLS = {
  btd: { bin: 'packages/model/bin/btd.js', commands: ['train', 'eval', 'predict', 'split', 'locate', 'ensemble', 'calibrate'] },
  'btd-trainer': { bin: 'services/trainer/bin/btd-trainer.js', commands: ['start', 'watch', 'list'] },
} as const;

type Tool = keyof typeof TOOLS;

/** The options a sub-command's parser knows, read from its `--help`. */
function knownOptions(tool: Tool, command: string): Set<string> {
  const result = spawnSync(process.execPath, [path.join(REPO_ROOT, TOOLS[tool].bin), command, '--help'], { encoding: 'utf8' });
  expect(result.status, `${tool} ${command} --help: ${result.stderr}`).toBe(0);
  return new Set([...result.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((match) => match[1]!));
}

interface DocumentedCommand {
  readonly file: string;
  readonly line: number;
  readonly tool: Tool;
  readonly command: string;
  readonly options: readonly string[];
}

/**
 * Every `btd <command>` and `btd-trainer <command>` a document shows, in code spans, code blocks or
 * tables, with the options written after it: up to the end of the code span or line (a shell line
 * continued with `\` included), a shell comment, a pipe or the next command.
 */
function documentedCommands(file: string): DocumentedCommand[] {
  const found: DocumentedCommand[] = [];
  const lines = read(file).split('\n');
  for (let index = 0; index < lines.length; index++) {
    let text = lines[index]!;
    for (let next = index + 1; /\\\s*$/.test(text) && next < lines.length; next++) text = `${text.replace(/\\\s*$/, ' ')}${lines[next]!}`;
    for (const match of text.matchAll(/(?<![\w/.-])(btd-trainer|btd) ([a-z]+)\b([^`\n]*)/g)) {
      const tool = match[1] as Tool;
      const command = match[2]!;
      if (!(TOOLS[tool].commands as readonly string[]).includes(command)) continue;
      const rest = match[3]!.split(/\s#\s|\||;|&&|(?<![\w/.-])btd(?:-trainer)? [a-z]+\b/)[0]!;
      const options = [...rest.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((option) => option[0]);
      found.push({ file, line: index + 1, tool, command, options });
    }
  }
  return found;
}

describe('commands in the documentation', () => {
  const commands = DOCUMENTS.flatMap(documentedCommands);

  it('are found in every document that shows some', () => {
    expect(commands.filter((command) => command.file === 'README.md').length).toBeGreaterThan(10);
    expect(new Set(commands.map((command) => `${command.tool} ${command.command}`)).size).toBeGreaterThanOrEqual(9);
  });

  it('use only options their command line knows', () => {
    const known = new Map<string, Set<string>>();
    const unknown = commands.flatMap(({ file, line, tool, command, options }) => {
      const key = `${tool} ${command}`;
      if (!known.has(key)) known.set(key, knownOptions(tool, command));
      return options.filter((option) => !known.get(key)!.has(option)).map((option) => `${file}:${line}: ${key} ${option}`);
    });
    expect(unknown).toEqual([]);
  });
});

describe('benchmarks in the README', () => {
  const benchmarks = readdirSync(path.join(REPO_ROOT, 'bench')).filter((name) => name.endsWith('.js'));
  const readme = read('README.md');
  const script = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.bench ?? '';

  it('names every benchmark script', () => {
    expect(benchmarks.length).toBeGreaterThan(0);
    expect(benchmarks.filter((name) => !readme.includes(`bench/${name}`))).toEqual([]);
  });

  it('says which of them npm run bench leaves out', () => {
    const run = [...script.matchAll(/node bench\/([\w-]+\.js)/g)].map((match) => match[1]!);
    expect(run.filter((name) => !benchmarks.includes(name)), 'scripts npm run bench runs that do not exist').toEqual([]);
    const statement = /`npm run bench` runs them all(?: but (.*?))?(?:\.(?=\s)| \()/s.exec(readme);
    expect(statement, 'the sentence saying what `npm run bench` runs').not.toBeNull();
    const leftOut = [...(statement![1] ?? '').matchAll(/`bench\/([\w-]+\.js)`/g)].map((match) => match[1]!);
    expect(leftOut.sort()).toEqual(benchmarks.filter((name) => !run.includes(name)).sort());
  });
});

describe('bench/faults.js on the command line', () => {
  // A command line taken for a run would start the services: it is stopped (SIGTERM, which stops them) and fails the test.
  const run = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO_ROOT, 'bench/faults.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  const optionsIn = (text: string) => [...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((match) => match[0]);

  it('lists with --help, and a default for, every option, the documents\' among them, and exits 0', () => {
    const help = run('--help');
    expect(help.status, help.stderr).toBe(0);
    const optionLines = help.stdout.split('\n').filter((line) => /^\s+(?:-\w, )?--[a-z]/.test(line));
    expect(optionLines.filter((line) => !line.includes('--help') && !line.includes('(default'))).toEqual([]);
    const listed = new Set(optionLines.map((line) => optionsIn(line)[0]));
    const documented = DOCUMENTS.flatMap((file) => [...read(file).matchAll(/node bench\/faults\.js([^`\n|]*)/g)].flatMap((match) => optionsIn(match[1]!)));
    expect(documented.length).toBeGreaterThan(0);
    expect(documented.filter((option) => !listed.has(option))).toEqual([]);
  });

  it('refuses an option it does not know with its usage and exit code 2, before starting anything', () => {
    const result = run('--no-such-option');
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("Unknown option '--no-such-option'");
    expect(result.stderr).toContain('Usage: node bench/faults.js');
    expect(result.stdout).toBe('');
  });

  it('refuses a numeric option that is no number, or out of range, with its usage and exit code 2, before starting anything', () => {
    for (const [option, value] of [['--studies', 'abc'], ['--studies', '0'], ['--batch', '2.5'], ['--burst', '-1'], ['--timeout', ''], ['--interval', 'x']] as const) {
      const result = run(`${option}=${value}`);
      expect(result.status, `${option}=${value}`).toBe(2);
      expect(result.stderr).toContain(`${option}: a `);
      expect(result.stderr).toContain('Usage: node bench/faults.js');
      expect(result.stdout).toBe('');
    }
  });
});
