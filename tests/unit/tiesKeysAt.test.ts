import { describe, expect, it } from 'vitest';
import { keysAt } from '../../src/engine/merge/plans/tiesFast';
import { seededRandom } from '../helpers/safetensorsFixtures';

describe('keysAt (global TIES sample brackets)', () => {
  it('returns the values at ascending positions, as a sorted copy does, with ties, one high half and every position kind', () => {
    const rng = seededRandom(7);
    const cases: Uint32Array[] = [
      // |tau| keys of f32 values: spread over many high halves.
      Uint32Array.from({ length: 5000 }, () => new Uint32Array(new Float32Array([(rng() - 0.5) * 0.02]).buffer)[0]! & 0x7fffffff),
      // Many equal keys and zeros.
      Uint32Array.from({ length: 3001 }, () => [0, 0x3c000000, 0x3c000001, 0x3b800000][Math.floor(rng() * 4)]!),
      // All keys within one high half (only the low pass separates them).
      Uint32Array.from({ length: 777 }, () => 0x3c010000 | Math.floor(rng() * 65536)),
      Uint32Array.of(0x7fffffff),
    ];
    for (const keys of cases) {
      const sorted = keys.slice().sort();
      const n = keys.length;
      const positions = [0, n - 1, Math.floor(n / 2), Math.floor(rng() * n), Math.floor(rng() * n)];
      expect(keysAt(keys, positions)).toEqual(positions.map((p) => sorted[p]));
    }
  });
});
