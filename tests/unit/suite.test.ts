/** The embedded demo suite loads and checks itself; manifests are validated; samples are stratified and seeded. */
import { describe, expect, it } from 'vitest';
import { stratifiedSample } from '../../src/engine/eval/sample';
import { loadSuite, parseManifest } from '../../src/engine/eval/suite';
import { FormatError } from '../../src/engine/errors';
import { memorySource } from '../../src/engine/io/byteSource';
import { suiteFilesFromDir } from '../../src/platform/nodeFiles';
import { readFileSync } from 'node:fs';

describe('demo suite', () => {
  it('loads public/demo with every file matching its size and sha256', async () => {
    const suite = await loadSuite(suiteFilesFromDir('public/demo'));
    expect(suite.tasks.length).toBeGreaterThanOrEqual(8);
    expect(suite.config.projectionDim).not.toBeNull();
    for (const t of suite.tasks) {
      expect(t.count).toBeGreaterThan(0);
      expect(t.count).toBeLessThanOrEqual(1000);
      expect(t.head.classes).toBe(t.task.classes.length);
      expect(t.head.dim).toBe(suite.config.projectionDim);
    }
  });

  it('rejects a file whose bytes differ from the manifest', async () => {
    const dir = suiteFilesFromDir('public/demo');
    const manifest = JSON.parse(readFileSync('public/demo/manifest.json', 'utf8'));
    const head = manifest.tasks[0].head as string;
    const corrupt = new Uint8Array(readFileSync(`public/demo/${head}`));
    corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 1;
    const files = { root: 'corrupt', open: async (p: string) => (p === head ? memorySource(p, corrupt) : dir.open(p)) };
    await expect(loadSuite(files)).rejects.toThrow(new RegExp(`${head}: sha256 differs`));
  });
});

describe('parseManifest', () => {
  const good = JSON.parse(readFileSync('public/demo/manifest.json', 'utf8'));
  it('accepts the demo manifest', () => expect(parseManifest(good).tasks.length).toBe(good.tasks.length));
  it.each([
    ['format', { ...good, format: 2 }, /format must be 1/],
    ['tasks', { ...good, tasks: [] }, /tasks must be a non-empty list/],
    ['path escape', { ...good, base: { ...good.base, path: '../secret.safetensors' } }, /base\.path must be a relative path inside the suite/],
    ['absolute path', { ...good, tasks: [{ ...good.tasks[0], data: '/etc/passwd' }] }, /tasks\[0\]\.data must be a relative path/],
    ['classes', { ...good, tasks: [{ ...good.tasks[0], classes: ['one'] }] }, /tasks\[0\]\.classes must list at least two/],
    ['duplicate ids', { ...good, tasks: [good.tasks[0], good.tasks[0]] }, /task ids must be unique/],
    ['image std', { ...good, image: { ...good.image, std: 0 } }, /image\.std must be a number/],
  ])('rejects a bad %s', (_, bad, pattern) => {
    expect(() => parseManifest(bad, 'm.json')).toThrow(FormatError);
    expect(() => parseManifest(bad, 'm.json')).toThrow(pattern);
  });
});

describe('stratifiedSample', () => {
  const labels = Uint8Array.from({ length: 1000 }, (_, i) => (i % 10 < 7 ? 0 : i % 10 === 7 ? 1 : 2)); // 70 % / 10 % / 20 %
  it('keeps class proportions, is sorted, unique and seeded', () => {
    const s = stratifiedSample(labels, 3, 100, 4);
    expect(s.length).toBe(100);
    const counts = [0, 0, 0];
    s.forEach((i) => counts[labels[i]!]!++);
    expect(counts).toEqual([70, 10, 20]);
    expect(new Set(s).size).toBe(100);
    expect([...s]).toEqual([...s].sort((a, b) => a - b));
    expect([...stratifiedSample(labels, 3, 100, 4)]).toEqual([...s]);
    expect([...stratifiedSample(labels, 3, 100, 5)]).not.toEqual([...s]);
  });
  it('returns everything in order when the sample is not smaller than the set', () => {
    expect([...stratifiedSample(labels, 3, null, 0)]).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(stratifiedSample(labels, 3, 5000, 0).length).toBe(1000);
  });
});
