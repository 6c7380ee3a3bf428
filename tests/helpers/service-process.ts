import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A service running as a child process. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  /** Log lines (JSON) printed so far. */
  readonly logs: string[];
  /** Resolves once the service logs `readyMessage`. */
  readonly ready: Promise<void>;
  /** Resolves with the exit code and signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `node <script>` with `env` on top of a minimal environment (PATH only), collecting its
 * log lines; `ready` resolves when a line contains the JSON string `readyMessage`.
 */
export function spawnService(script: string, env: Record<string, string>, readyMessage: string): ServiceProcess {
  const child = spawn(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      if (line.includes(JSON.stringify(readyMessage))) resolve();
    });
    void exited.then(({ code }) => reject(new Error(`${script} exited with ${code} before it was ready:\n${logs.join('\n')}`)));
  });
  ready.catch(() => {});
  child.stderr!.on('data', () => {}); // drained so a chatty dependency cannot block the child
  return { child, logs, ready, exited };
}
