// The services and servers the system benchmarks start as child processes, on ports of their own.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts a service (a script under the repository) as a child process; `ready` resolves once it
 * logs `readyMessage`. With `cpu`, the process and all its threads may run on that core only
 * (`taskset` execs Node, so the pid is Node's). With `log`, a writable stream, its output goes
 * there (stderr included); otherwise stdout is read and dropped, and stderr is the benchmark's own.
 * BENCH_SERVICE_NODE_ARGS adds Node options ("--cpu-prof --cpu-prof-dir=/tmp/prof", say). With
 * `argv`, Node runs those arguments instead of the script (`script` then only names it), from the
 * repository, whose packages they import.
 */
export function startService(script, env, readyMessage, { cpu, log, argv } = {}) {
  const nodeArgs = process.env.BENCH_SERVICE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const command = [process.execPath, ...nodeArgs, ...(argv ?? [path.join(ROOT, script)])];
  if (cpu !== undefined) command.unshift('taskset', '--cpu-list', String(cpu));
  const child = spawn(command[0], command.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', log ? 'pipe' : 'inherit'] });
  if (log) child.stderr.on('data', (chunk) => log.write(chunk));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      log?.write(`${line}\n`);
      if (line.includes(readyMessage)) resolve();
    });
    void exited.then(({ code, signal }) => reject(new Error(`${script} exited (${signal ?? `code ${code}`}) before it was ready`)));
  });
  ready.catch(() => {});
  const running = () => child.exitCode === null && child.signalCode === null;
  /** Sends `signal` and waits for the exit; nothing when it has already exited. */
  const kill = async (signal) => {
    if (running()) child.kill(signal);
    return exited;
  };
  return { ready, exited, running, kill, stop: () => kill('SIGTERM'), pid: child.pid };
}
