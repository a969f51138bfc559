/**
 * Stratified, seeded samples of a test set for fast live evaluation: the same (labels, size, seed) always gives the
 * same images, on every platform (the shared counter-based RNG), with classes represented in proportion.
 */
import { rngKey, rngU32, stringId } from '../rng';

/**
 * Indices of a stratified sample of `n` images (all of them, in order, when n is null or >= the set's size): each
 * class is shuffled with the seeded RNG and classes are drawn round-robin in proportion to their size.
 */
export function stratifiedSample(labels: ArrayLike<number>, classes: number, n: number | null, seed: number): Int32Array {
  const total = labels.length;
  if (n === null || n >= total) return Int32Array.from({ length: total }, (_, i) => i);
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < total; i++) byClass[labels[i]!]!.push(i);
  byClass.forEach((list, c) => {
    const key = rngKey(seed, c, stringId('stratified sample'));
    for (let i = list.length - 1; i > 0; i--) {
      const j = rngU32(key, i) % (i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
  });
  // Largest-remainder allocation of n over the classes, then the first `quota` shuffled images of each.
  const exact = byClass.map((l) => (l.length * n) / total);
  const quota = exact.map(Math.floor);
  let left = n - quota.reduce((a, b) => a + b, 0);
  const order = exact.map((x, c) => [x - Math.floor(x), c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, c] of order) {
    if (left === 0) break;
    if (quota[c]! < byClass[c]!.length) {
      quota[c]!++;
      left--;
    }
  }
  const out: number[] = [];
  byClass.forEach((list, c) => out.push(...list.slice(0, quota[c])));
  return Int32Array.from(out.sort((a, b) => a - b));
}
