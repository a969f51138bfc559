/**
 * HeldWriter (src/engine/merge/heldWriter.ts): nothing reaches the writer behind it before `release`, which passes
 * every write on in its order; arrays handed over (`owned`) are kept as they are, so patching them before the release
 * changes what is written, while other arrays are copied (their owner may reuse them).
 */
import { describe, expect, it } from 'vitest';
import { HeldWriter, type TensorWriter } from '../../src/engine/merge/heldWriter';

function recorder(): TensorWriter & { seen: [string, number[]][] } {
  const seen: [string, number[]][] = [];
  return { seen, write: async (name, bytes) => void seen.push([name, [...bytes]]) };
}

describe('HeldWriter', () => {
  it('holds writes until release, then passes them on in order', async () => {
    const to = recorder();
    const held = new HeldWriter(to);
    await held.write('a', Uint8Array.from([1, 2]));
    await held.write('b', Uint8Array.from([3]), true);
    await held.write('a', Uint8Array.from([4]));
    expect(to.seen).toEqual([]);
    await held.release();
    expect(to.seen).toEqual([
      ['a', [1, 2]],
      ['b', [3]],
      ['a', [4]],
    ]);
    await held.release();
    expect(to.seen).toHaveLength(3);
  });

  it('keeps owned arrays (patches show) and copies the others', async () => {
    const to = recorder();
    const held = new HeldWriter(to);
    const owned = Uint8Array.from([1, 1]);
    const lent = Uint8Array.from([2, 2]);
    await held.write('x', owned, true);
    await held.write('y', lent);
    owned.set([9, 9]);
    lent.set([7, 7]);
    await held.release();
    expect(to.seen).toEqual([
      ['x', [9, 9]],
      ['y', [2, 2]],
    ]);
  });
});
