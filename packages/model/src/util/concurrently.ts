/** Runs `task(i)` for every i below `count`, at most `concurrency` at a time; resolves when all are done. */
export async function forEachConcurrently(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const work = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, work));
}
