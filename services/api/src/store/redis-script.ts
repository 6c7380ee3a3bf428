import { createHash } from 'node:crypto';
import type { Redis } from '@btd/shared';

/** A Lua script run atomically by Redis: cached by SHA, sent in full only when Redis lacks it. */
export type RedisScript = (redis: Redis, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

/** Wraps Lua source as a {@link RedisScript}. */
export function redisScript(lua: string): RedisScript {
  const sha = createHash('sha1').update(lua).digest('hex');
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}

/** Lua helper prepended to scripts: HSET every field of a JSON object of strings. */
export const LUA_HSET_JSON = `
local function hsetJson(key, json)
  local fields = cjson.decode(json)
  local flat = {}
  for field, value in pairs(fields) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end
end
`;

/** Deletes KEYS[1] if it holds ARGV[1] (a claim or lock of ours, not one taken over since); returns 1 if it did. */
export const deleteIfHolds = redisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
