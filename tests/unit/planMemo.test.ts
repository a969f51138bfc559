/** The bounded memo of the methods' statistics (merge/planMemo.ts): least recently used values go over the limit. */
import { expect, it } from 'vitest';
import { PlanMemo } from '../../src/engine/merge/planMemo';

it('keeps values with their sizes and lets the least recently used go over the limit', () => {
  const memo = new PlanMemo(100);
  memo.set('a', 'A', 40);
  memo.set('b', 'B', 40);
  expect([memo.bytes, memo.size]).toEqual([80, 2]);
  // Reading a makes it the most recent: c pushes b out, not a.
  expect(memo.get('a')).toBe('A');
  memo.set('c', 'C', 40);
  expect([memo.has('a'), memo.has('b'), memo.has('c')]).toEqual([true, false, true]);
  expect(memo.bytes).toBe(80);
  expect(memo.get('b')).toBeUndefined();
});

it('replaces a value in place of its old size, and keeps nothing larger than the limit', () => {
  const memo = new PlanMemo(100);
  memo.set('a', 1, 30);
  memo.set('a', 2, 50);
  expect([memo.get('a'), memo.bytes, memo.size]).toEqual([2, 50, 1]);
  // Too large: not kept, and the old value of that key is gone too (it no longer describes the key's latest value).
  memo.set('a', 3, 101);
  expect([memo.has('a'), memo.bytes]).toEqual([false, 0]);
  memo.set('b', 'B', 60);
  memo.set('c', 'C', 60);
  expect([memo.has('b'), memo.has('c'), memo.bytes]).toEqual([false, true, 60]);
});

it('a value may be falsy, and only undefined means missing', () => {
  const memo = new PlanMemo();
  memo.set('zero', 0, 8);
  memo.set('none', null, 8);
  expect(memo.get('zero')).toBe(0);
  expect(memo.get('none')).toBeNull();
  expect(memo.get('other')).toBeUndefined();
  expect(memo.limitBytes).toBe(64 * 2 ** 20);
});
