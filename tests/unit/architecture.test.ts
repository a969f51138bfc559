/**
 * Architecture rules, checked on the sources: the engine stays framework- and platform-free (it runs in the page, a
 * worker and Node), WGSL is loaded only through src/engine/gpu/shaders.ts, and files stay small.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = process.cwd();

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(name) ? [p] : [];
  });
}

const importsOf = (src: string) => [...src.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
const stripComments = (src: string) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');

describe('src/engine is framework- and platform-free', () => {
  const engine = files(join(root, 'src', 'engine'), /\.tsx?$/);
  it('has source files', () => expect(engine.length).toBeGreaterThan(10));
  for (const file of engine) {
    const rel = relative(root, file);
    it(`${rel} imports no React, zustand, Node or app/ui/platform code`, () => {
      const src = readFileSync(file, 'utf8');
      for (const spec of importsOf(src)) {
        expect(spec, `${rel} imports ${spec}`).not.toMatch(/^(react|react-dom|zustand|recharts|node:|fs$|path$|os$|url$|child_process$|webgpu$)/);
        expect(spec, `${rel} imports ${spec}`).not.toMatch(/\/(app|ui|platform|cli)\//);
      }
    });
    it(`${rel} touches no DOM or Node globals`, () => {
      const code = stripComments(readFileSync(file, 'utf8'));
      expect(code).not.toMatch(/\b(window|document|localStorage|sessionStorage|navigator|process|require|__dirname|Buffer)\s*[.[(]/);
    });
  }
});

describe('shaders', () => {
  it('are loaded only by src/engine/gpu/shaders.ts', () => {
    const loadsWgsl = (src: string) => importsOf(src).some((s) => s.includes('.wgsl')) || /import\.meta\.glob\([^)]*wgsl/.test(src);
    const offenders = files(join(root, 'src'), /\.tsx?$/).filter((f) => loadsWgsl(readFileSync(f, 'utf8')) && !f.endsWith(join('gpu', 'shaders.ts')));
    expect(offenders.map((f) => relative(root, f))).toEqual([]);
    expect(loadsWgsl(readFileSync(join(root, 'src', 'engine', 'gpu', 'shaders.ts'), 'utf8'))).toBe(true);
  });
  it('each open with a header comment', () => {
    for (const f of files(join(root, 'shaders'), /\.wgsl$/)) expect(readFileSync(f, 'utf8').trimStart().startsWith('//'), relative(root, f)).toBe(true);
  });
});

describe('file size budget', () => {
  it('no source file is over 600 lines', () => {
    const big = [...files(join(root, 'src'), /\.(ts|tsx)$/), ...files(join(root, 'shaders'), /\.wgsl$/)]
      .map((f) => [relative(root, f), readFileSync(f, 'utf8').split('\n').length] as const)
      .filter(([, n]) => n > 600);
    expect(big).toEqual([]);
  });
});
