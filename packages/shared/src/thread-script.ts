/**
 * URL of a worker-thread script beside a module: `./<name>.js` next to it when it is compiled, or the
 * compiled copy under the package's dist/ when it runs from TypeScript source in src/ (under a test
 * runner). Pass the calling module's `import.meta.url`; `name` without extension.
 */
export function threadScript(moduleUrl: string, name: string): URL {
  const src = moduleUrl.lastIndexOf('/src/');
  const compiled = moduleUrl.endsWith('.ts') && src >= 0 ? `${moduleUrl.slice(0, src)}/dist/${moduleUrl.slice(src + 5)}` : moduleUrl;
  return new URL(`./${name}.js`, compiled);
}
