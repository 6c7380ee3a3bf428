import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startApi } from '@btd/api';
import { useApiHarness } from './api-harness.js';

const harness = useApiHarness();

describe('the X-Request-Id a client sends', () => {
  it('names its request in the log when it is a plain id, and is replaced by a new one when it is long or holds other characters', async () => {
    const lines: { msg?: string; req?: { id?: string; path?: string } }[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n').map((line) => JSON.parse(line) as (typeof lines)[number])));
    const api = await startApi({ ...harness.env.config, port: 0 }, pino({ level: 'info' }, stream));
    const given = ['3f2c1e9a-8b7d-4c6e-9f10-123456789abc', 'x'.repeat(129), 'a'.repeat(10_000), 'id"},{"msg":"forged', 'two words'];
    try {
      for (const id of given) expect((await fetch(`${api.url}/healthz?n=${given.indexOf(id)}`, { headers: { 'x-request-id': id } })).status).toBe(200);
    } finally {
      await api.close();
    }
    const ids = lines.filter((line) => line.msg === 'incoming request' && line.req?.path === '/healthz').map((line) => line.req!.id!);
    expect(ids).toHaveLength(given.length);
    expect(ids[0]).toBe(given[0]);
    for (const id of ids.slice(1)) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
