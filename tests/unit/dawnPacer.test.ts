import { describe, expect, it } from 'vitest';
import { installPacer, pace, pacedPending, sliceMs } from '../../src/platform/dawnPacer';

const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('dawnPacer', () => {
  it('sleeps an eighth of the time waited so far, from 20 us to 1 ms', () => {
    expect(sliceMs(0)).toBe(0.02);
    expect(sliceMs(0.1)).toBe(0.02);
    expect(sliceMs(4)).toBe(0.5);
    expect(sliceMs(8)).toBe(1);
    expect(sliceMs(1e6)).toBe(1);
  });

  it('passes values and rejections through and forgets settled promises', async () => {
    const a = pace(later(15, 'a'));
    const b = pace(Promise.reject(new Error('mapping failed')));
    expect(pacedPending()).toBe(2);
    await expect(b).rejects.toThrow('mapping failed');
    // Timers keep firing while a paced promise is pending (the loop sleeps per turn, it is not blocked).
    const timer = await Promise.race([later(5, 'timer'), a]);
    expect(timer).toBe('timer');
    expect(await a).toBe('a');
    expect(pacedPending()).toBe(0);
  });

  it('wraps the promise-returning methods once, keeping results, `this` and synchronous throws', async () => {
    class GPUBuffer {
      constructor(readonly size: number) {}
      mapAsync(mode: number): Promise<number> {
        if (mode < 0) throw new TypeError('bad mode');
        return later(5, this.size + mode);
      }
      unmap(): string {
        return 'sync';
      }
    }
    const original = GPUBuffer.prototype.mapAsync;
    installPacer({ GPUBuffer });
    installPacer({ GPUBuffer });
    const wrapped = GPUBuffer.prototype.mapAsync;
    expect(wrapped).not.toBe(original);
    const buffer = new GPUBuffer(10);
    const mapped = buffer.mapAsync(1);
    expect(pacedPending()).toBe(1);
    expect(await mapped).toBe(11);
    expect(() => buffer.mapAsync(-1)).toThrow('bad mode');
    expect(buffer.unmap()).toBe('sync');
    expect(pacedPending()).toBe(0);
    // Installing again leaves one wrapper (no nesting).
    expect(GPUBuffer.prototype.mapAsync).toBe(wrapped);
  });
});
