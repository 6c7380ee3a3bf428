import { SingleBar, Presets } from 'cli-progress';

/** A progress bar on stderr (stdout stays clean for JSON); silent when stderr is not a terminal. */
export function createProgress(label: string): { update(done: number, total: number, extra?: string): void; stop(): void } {
  if (!process.stderr.isTTY) {
    let lastLogged = -1;
    return {
      update(done, total, extra) {
        const tenth = Math.floor((10 * done) / total);
        if (tenth !== lastLogged && (done === total || tenth > lastLogged)) {
          lastLogged = tenth;
          process.stderr.write(`${label} ${done}/${total}${extra ? ` ${extra}` : ''}\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new SingleBar(
    { format: `${label} [{bar}] {value}/{total} {extra}`, stream: process.stderr, hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, extra = '') {
      if (!started) {
        bar.start(total, 0, { extra });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { extra });
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
