/** The order in which continual methods take the models: given, a seeded shuffle, or an explicit permutation. */
import { ConfigError } from '../errors';
import { rngKey, rngU32, stringId } from '../rng';
import type { ParamValues } from './params';

/** The merge order: "given" (0..count-1), "shuffle" (seeded, see shuffledOrder) or a validated permutation. */
export function resolveOrder(order: ParamValues[string], seed: number, count: number): number[] {
  if (order === 'given') return Array.from({ length: count }, (_, i) => i);
  if (order === 'shuffle') return shuffledOrder(count, seed);
  const list = Array.isArray(order) ? (order as unknown[]) : null;
  const seen = new Set<unknown>();
  const ok = list !== null && list.length === count && list.every((x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) < count && !seen.has(x) && seen.add(x));
  if (!ok) throw new ConfigError('params.order', `expected "given", "shuffle" or a permutation of 0..${count - 1} (each of the ${count} models once), got ${JSON.stringify(order)}`);
  return (list as number[]).slice();
}

/** Seeded Fisher-Yates permutation of 0..count-1 driven by the shared counter-based RNG. */
export function shuffledOrder(count: number, seed: number): number[] {
  const key = rngKey(seed, 0, stringId('order'));
  const out = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = rngU32(key, i) % (i + 1); // modulo bias <= count / 2^32: irrelevant for model counts
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

