/**
 * The one place that loads WGSL. Kernels live in the top-level `shaders/` folder, one per file; Vite (page,
 * vitest and the CLI build alike) inlines them as strings. Every kernel is prefixed with the shared constants
 * and with `common.wgsl` (helpers: indexing, f16/bf16 decoding, RNG), so nothing is copied between kernels. Files
 * whose name starts with `_` are parts for a few kernels: a kernel with the line `// uses: _name` gets `_name.wgsl`
 * after the prelude (parts may use the kernel's own bindings).
 */
import { wgslConstants } from './constants';

const files = import.meta.glob('../../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

const byName = new Map<string, string>();
for (const [path, text] of Object.entries(files)) {
  const name = path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length);
  byName.set(name, text);
}

/** Names of every kernel file (without `.wgsl`), excluding the shared prelude and the parts. */
export function kernelNames(): string[] {
  return [...byName.keys()].filter((n) => n !== 'common' && !n.startsWith('_')).sort();
}

/** What every kernel is prefixed with: the shared constants and common.wgsl. */
export function shaderPrelude(): string {
  return `${wgslConstants()}\n${byName.get('common') ?? ''}\n`;
}

/** Full WGSL source of kernel `name`: the prelude, the parts it uses, then the kernel itself. */
export function shaderSource(name: string): string {
  const body = byName.get(name);
  if (body === undefined) throw new Error(`no shader named '${name}' in shaders/ (have: ${kernelNames().join(', ')})`);
  const parts = [...body.matchAll(/^\/\/ uses: (_\w+)\s*$/gm)].map((m) => {
    const part = byName.get(m[1]!);
    if (part === undefined) throw new Error(`shader '${name}' uses '${m[1]}', which is not in shaders/`);
    return part;
  });
  return `${shaderPrelude()}${parts.join('\n')}${body}`;
}
