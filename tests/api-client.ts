import { setTimeout as sleep } from 'node:timers/promises';
import type { StudyView } from '@btd/api';
import type { ApiTestEnv, TestClient } from './api-test-env.js';

/** A file to put in a multipart submission. */
export interface UploadFile {
  name: string;
  bytes: Uint8Array;
  type?: string;
}

/** A submission: files under `file`, plus text fields. */
export function studyForm(files: readonly UploadFile[], fields: Record<string, string> = {}, fileField = 'file'): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  for (const file of files) form.append(fileField, new Blob([new Uint8Array(file.bytes)], { type: file.type ?? 'image/jpeg' }), file.name);
  return form;
}

/** An answer with its JSON body parsed (when there is one). */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** Sends a request to the test API as `client` and parses the JSON answer. */
export async function call<T = Record<string, unknown>>(
  env: ApiTestEnv,
  client: TestClient | null,
  method: string,
  path: string,
  options: { body?: FormData | object; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...(client ? env.auth(client) : {}), ...options.headers };
  let body: RequestInit['body'];
  if (options.body instanceof FormData) body = options.body;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${env.url}${path}`, { method, headers, body });
  const text = await response.text();
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, headers: response.headers, body: (type.includes('json') && text ? JSON.parse(text) : text) as T };
}

/** Polls a study until `until` holds for it, or fails after `timeoutMs`. */
export async function waitForStudy(
  env: ApiTestEnv,
  client: TestClient,
  studyId: string,
  until: (study: StudyView) => boolean = (study) => study.state === 'done' || study.state === 'failed',
  timeoutMs = 60_000,
): Promise<StudyView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await call<StudyView>(env, client, 'GET', `/v1/studies/${studyId}`);
    if (answer.status !== 200) throw new Error(`GET study answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    if (until(answer.body)) return answer.body;
    if (Date.now() > deadline) throw new Error(`study ${studyId} still ${answer.body.state} after ${timeoutMs} ms`);
    await sleep(100);
  }
}
