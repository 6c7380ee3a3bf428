/**
 * URL of a worker-thread script of this package: beside this module when compiled, or the compiled
 * copy in dist/ when running from TypeScript source (under a test runner). `name` without extension.
 */
export function threadScript(name: string): URL {
  return import.meta.url.endsWith('.ts') ? new URL(`../dist/${name}.js`, import.meta.url) : new URL(`./${name}.js`, import.meta.url);
}
