import { ApiError } from './api-error.js';

/**
 * The first key of JSON `text` that would reach an object's prototype, as Fastify's JSON parser
 * (secure-json-parse) finds them: `__proto__`, or `constructor` holding `prototype`. Undefined when
 * it holds none, or is not JSON at all.
 */
function prototypeKeyIn(text: string): string | undefined {
  let found: string | undefined;
  try {
    JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') found ??= '__proto__';
      else if (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype')) found ??= 'constructor.prototype';
      return value;
    });
  } catch {
    return undefined;
  }
  return found;
}

/**
 * The 400 `forbidden_json_key` of a JSON body that Fastify's parser refused for a key reaching an
 * object's prototype (its refusal says only "not valid JSON", which such a body is); undefined when
 * the body was refused for anything else, a syntax error say.
 */
export function forbiddenJsonKey(text: string): ApiError | undefined {
  const key = prototypeKeyIn(text);
  if (key === undefined) return undefined;
  return new ApiError(400, 'forbidden_json_key', `the body holds a "${key}" key, which is refused: it would reach the prototype of the objects read from it; leave it out`);
}
