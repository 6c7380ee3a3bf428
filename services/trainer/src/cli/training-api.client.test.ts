import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { endpoint, TrainingApiClient } from './training-api.client.js';

describe('the training API client', () => {
  it('keeps the path of the base URL, with or without its last slash', () => {
    expect(endpoint('http://gateway.example/btd', '/v1/trainings').href).toBe('http://gateway.example/btd/v1/trainings');
    expect(endpoint('http://gateway.example/btd/', '/v1/trainings/t%201').href).toBe('http://gateway.example/btd/v1/trainings/t%201');
    expect(endpoint('http://localhost:3000', '/v1/trainings').href).toBe('http://localhost:3000/v1/trainings');
  });

  it('asks an API behind a gateway under its path', async () => {
    const asked: string[] = [];
    const server = createServer((request, response) => {
      asked.push(`${request.method} ${request.url}`);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ items: [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = new TrainingApiClient({ url: `http://127.0.0.1:${port}/btd/`, key: 'k' });
      expect(await client.list()).toEqual([]);
      expect(asked).toEqual(['GET /btd/v1/trainings']);
    } finally {
      server.close();
    }
  });
});
