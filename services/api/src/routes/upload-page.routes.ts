import { readFile } from 'node:fs/promises';
import type { FastifyPluginAsync } from 'fastify';

/** Static files of the upload page, next to `src/` and `dist/`. */
const PUBLIC_DIR = new URL('../../public/', import.meta.url);

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * `GET /`: the upload page, plain HTML/CSS/JS. It holds no key: the person pastes one (or
 * opens the link `npm start` prints, which carries it in the URL fragment that never reaches
 * a server), and it is kept in this tab's sessionStorage only.
 */
export const uploadPageRoutes: FastifyPluginAsync = async (app) => {
  const files = new Map<string, Buffer>();
  for (const name of ['index.html', ...Object.keys(ASSETS)]) files.set(name, await readFile(new URL(name, PUBLIC_DIR)));
  const security = {
    'content-security-policy': "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  };

  app.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply.headers(security).type('text/html; charset=utf-8').send(files.get('index.html')),
  );
  for (const [name, type] of Object.entries(ASSETS)) {
    app.get(`/assets/${name}`, { schema: { hide: true } }, async (_request, reply) =>
      reply.headers(security).type(type).header('cache-control', 'no-cache').send(files.get(name)),
    );
  }
};
