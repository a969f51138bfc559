/**
 * vit_attention (src/engine/eval/vitKernels.ts attention) against its float64 twin (reference/vit.ts attentionRef) on
 * random inputs: head sizes that are multiples of 4 (vec4 loads) and not (scalar quads, zero-padded), from 1 to the
 * kernel's limit VIT_MAX_HEAD_DIM (every one of the 32 register quads in use), causal and not, a single token, and
 * scores large enough that a softmax without its running maximum would overflow f32. Tolerance: 2e-6 absolute on
 * outputs of magnitude <= 1 (f32 dot products and exponentials against float64).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { VIT_MAX_HEAD_DIM } from '../../src/engine/gpu/constants';
import { attention } from '../../src/engine/eval/vitKernels';
import { attentionRef } from '../../src/engine/reference/vit';
import { emptyF32, readF32, releaseTestContext, testContext, uploadF32 } from '../helpers/gpu';
import { seededRandom } from '../helpers/safetensorsFixtures';

afterAll(releaseTestContext);

const TOL = 2e-6;

async function compare(shape: { batch: number; tokens: number; heads: number; headDim: number; causal?: boolean }, scale = 1, seed = 1): Promise<number> {
  const ctx = await testContext();
  const { batch, tokens, heads, headDim } = shape;
  const n = batch * tokens * heads * headDim;
  const rng = seededRandom(seed);
  // Values on a grid of 1/1024, exact in f32 and float64 alike.
  const make = () => Float32Array.from({ length: n }, () => (Math.round((rng() * 2 - 1) * 1024) / 1024) * scale);
  const [q, k] = [make(), make()];
  const v = Float32Array.from({ length: n }, () => Math.round((rng() * 2 - 1) * 1024) / 1024);
  const bufs = [uploadF32(ctx, 'q', q), uploadF32(ctx, 'k', k), uploadF32(ctx, 'v', v), emptyF32(ctx, 'out', n)] as const;
  try {
    attention(ctx, bufs[0], bufs[1], bufs[2], bufs[3], shape);
    const got = await readF32(ctx, bufs[3], n);
    const want = attentionRef(Float64Array.from(q), Float64Array.from(k), Float64Array.from(v), batch, tokens, heads, headDim, shape.causal ?? false);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    return Number.isNaN(worst) ? Infinity : worst;
  } finally {
    for (const b of bufs) ctx.destroyBuffer(b);
  }
}

describe('vit_attention against attentionRef', () => {
  for (const [batch, tokens, heads, headDim] of [
    [2, 17, 4, 32],
    [1, 50, 2, 64],
    [3, 7, 2, 6],
    [2, 5, 3, 1],
    [2, 9, 1, 13],
    [1, 4, 2, VIT_MAX_HEAD_DIM],
    [1, 6, 1, VIT_MAX_HEAD_DIM - 3],
    [3, 1, 2, 8],
  ] as const) {
    for (const causal of [false, true]) {
      it(`batch ${batch}, ${tokens} tokens, ${heads} heads of ${headDim}${causal ? ', causal' : ''}`, async () => {
        expect(await compare({ batch, tokens, heads, headDim, causal }, 1, batch * 1000 + tokens * 10 + headDim)).toBeLessThanOrEqual(TOL);
      });
    }
  }

  it('stays finite where the scores exceed the range of exp in f32 (running maximum)', async () => {
    // Entries up to 16 in magnitude: scores up to 16 * 16 * 64 / 8 = 2048, exp of which is infinite in f32.
    expect(await compare({ batch: 2, tokens: 12, heads: 2, headDim: 64 }, 16, 7)).toBeLessThanOrEqual(1e-5);
    expect(await compare({ batch: 1, tokens: 12, heads: 3, headDim: 6, causal: true }, 16, 8)).toBeLessThanOrEqual(1e-5);
  });
});
