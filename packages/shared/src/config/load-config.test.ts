import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { logConfigFields, redisConfigFields, s3ConfigFields } from './config-fields.js';
import { describeConfig, envNameOf, loadConfig } from './load-config.js';

const Schema = Type.Object({
  ...redisConfigFields,
  ...s3ConfigFields,
  ...logConfigFields,
  port: Type.Integer({ env: 'PORT', default: 3000, minimum: 1, maximum: 65535 }),
  apiKeysFile: Type.String({ description: 'required, no default' }),
  verbose: Type.Optional(Type.Boolean()),
});

describe('loadConfig', () => {
  it('applies defaults, coerces numbers and booleans, and freezes the result', () => {
    const config = loadConfig(Schema, { API_KEYS_FILE: '/keys', PORT: '8080', S3_FORCE_PATH_STYLE: 'no', VERBOSE: 'yes' });
    expect(config).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      redisStartupTimeoutMs: 120_000,
      s3Bucket: 'btd',
      s3Region: 'us-east-1',
      s3ForcePathStyle: false,
      s3TimeoutMs: 30_000,
      logLevel: 'info',
      port: 8080,
      apiKeysFile: '/keys',
      verbose: true,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig(Schema, { API_KEYS_FILE: 'k', PORT: '', S3_ENDPOINT: '' })).toMatchObject({ port: 3000 });
  });

  it('lists every invalid or missing key in one error', () => {
    const env = { REDIS_URL: 'http://nope', PORT: '1.5', LOG_LEVEL: 'loud', S3_FORCE_PATH_STYLE: 'maybe' };
    const error = (() => {
      try {
        loadConfig(Schema, env);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const issues = (error as ConfigError).issues;
    expect(issues.map((issue) => issue.env).sort()).toEqual(['API_KEYS_FILE', 'LOG_LEVEL', 'PORT', 'REDIS_URL', 'S3_FORCE_PATH_STYLE']);
    expect(issues.find((issue) => issue.env === 'API_KEYS_FILE')?.message).toBe('is required');
    expect(issues.find((issue) => issue.env === 'LOG_LEVEL')?.message).toContain('one of fatal, error, warn');
    expect((error as ConfigError).message).toContain('5 problems');
  });

  it("never shows a secret's value in an error, nor the credentials in a URL", () => {
    const withSecret = Type.Object({ ...redisConfigFields, token: Type.String({ env: 'TOKEN', secret: true, minLength: 16 }) });
    const error = (() => {
      try {
        loadConfig(withSecret, { TOKEN: 'hunter2-token', REDIS_URL: 'tcp://:redis-password@redis:6379' });
      } catch (caught) {
        return caught as ConfigError;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.message).not.toMatch(/hunter2|redis-password/);
    expect(error?.issues.find((issue) => issue.env === 'TOKEN')?.message).toMatch(/\(a value not shown: it is a secret\)$/);
    expect(error?.issues.find((issue) => issue.env === 'REDIS_URL')?.message).toMatch(/\(got "tcp:\/\/…@redis:6379"\)$/);
  });

  it('rejects numbers that are only almost numbers', () => {
    for (const port of ['80a', '0x50', '1e3', ' ']) {
      expect(() => loadConfig(Schema, { API_KEYS_FILE: 'k', PORT: port }), port).toThrow(ConfigError);
    }
  });
});

describe('envNameOf and describeConfig', () => {
  it('derives SCREAMING_SNAKE_CASE names unless annotated', () => {
    expect(envNameOf('apiKeysFile', Type.String())).toBe('API_KEYS_FILE');
    expect(envNameOf('anything', Type.String({ env: 'EXPLICIT' }))).toBe('EXPLICIT');
  });

  it('documents every field with its env name and default', () => {
    const docs = describeConfig(Schema);
    expect(docs.find((doc) => doc.env === 'REDIS_URL')).toMatchObject({ default: 'redis://127.0.0.1:6379' });
    expect(docs.find((doc) => doc.env === 'S3_ENDPOINT')?.default).toBeUndefined();
    expect(docs).toHaveLength(Object.keys(Schema.properties).length);
  });
});
