import { describe, expect, it } from 'vitest';
import { AlignmentError } from '../../src/engine/errors';
import { memorySource } from '../../src/engine/io/byteSource';
import { openSingleFileModel, type Model } from '../../src/engine/io/model';
import { alignModels, type AlignOptions } from '../../src/engine/merge/align';
import type { DType } from '../../src/engine/types';
import { makeModelBytes, randomTensor, seededRandom } from '../helpers/safetensorsFixtures';

const rng = seededRandom(11);

/** A single-file model from [name, dtype, shape] triples; its file is `<name>.safetensors`. */
function model(name: string, tensors: [string, DType, number[]][]): Promise<Model> {
  const bytes = makeModelBytes(tensors.map(([n, dtype, shape]) => ({ name: n, dtype, shape, data: randomTensor(rng, shape, dtype) })));
  return openSingleFileModel(name, memorySource(`${name}.safetensors`, bytes));
}

const strict: AlignOptions = { extraBaseTensors: 'passthrough', mixedDtypes: false };

/** Expects an AlignmentError for `tensor` whose message matches every pattern. */
function expectAlignmentError(fn: () => unknown, tensor: string, ...patterns: RegExp[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AlignmentError);
  expect((caught as AlignmentError).tensor).toBe(tensor);
  for (const p of patterns) expect((caught as Error).message).toMatch(p);
}

describe('alignModels', () => {
  it('merges float tensors, passes through integer ones and extra base tensors, sorted by name', async () => {
    const base = await model('base', [
      ['w', 'F32', [3, 2]],
      ['ids', 'I64', [1, 4]],
      ['b', 'BF16', [3]],
      ['head', 'F32', [2]],
    ]);
    const ft = [
      await model('ft1', [['w', 'F32', [3, 2]], ['b', 'BF16', [3]], ['ids', 'I64', [1, 4]]]),
      await model('ft2', [['b', 'BF16', [3]], ['w', 'F32', [3, 2]], ['ids', 'I64', [1, 4]]]),
    ];
    expect(alignModels(base, ft, strict)).toEqual([
      { name: 'b', shape: [3], dtype: 'BF16', action: 'merge', numel: 3 },
      { name: 'head', shape: [2], dtype: 'F32', action: 'passthrough', numel: 2 },
      { name: 'ids', shape: [1, 4], dtype: 'I64', action: 'passthrough', numel: 4 },
      { name: 'w', shape: [3, 2], dtype: 'F32', action: 'merge', numel: 6 },
    ]);
    expect(alignModels(base, ft, { ...strict, extraBaseTensors: 'ignore' }).map((t) => t.name)).toEqual(['b', 'ids', 'w']);
  });

  it('needs at least one fine-tuned model', async () => {
    const base = await model('base', [['w', 'F32', [2]]]);
    expect(() => alignModels(base, [], strict)).toThrow(/at least one fine-tuned model/);
  });

  it('rejects a fine-tuned tensor the base lacks, naming the model file and the base file', async () => {
    const base = await model('base', [['w', 'F32', [2]]]);
    const ft = await model('ft', [['w', 'F32', [2]], ['lora.A', 'F32', [2]]]);
    expectAlignmentError(() => alignModels(base, [ft], strict), 'lora.A', /"lora.A" of ft.safetensors is not in the base model \(base.safetensors\)/);
  });

  it('rejects a tensor that one fine-tuned model has and another lacks, naming the one that lacks it', async () => {
    const base = await model('base', [['w', 'F32', [2]], ['v', 'F32', [2]]]);
    const ft1 = await model('ft1', [['w', 'F32', [2]], ['v', 'F32', [2]]]);
    const ft2 = await model('ft2', [['w', 'F32', [2]]]);
    expectAlignmentError(() => alignModels(base, [ft1, ft2], strict), 'v', /"v" is missing from ft2 \(ft2.safetensors\), but ft1 \(ft1.safetensors\) has it/);
    expectAlignmentError(() => alignModels(base, [ft2, ft1], strict), 'v', /missing from ft2/);
  });

  it('rejects a shape mismatch, showing both shapes and both files', async () => {
    const base = await model('base', [['w', 'F32', [4, 3]]]);
    const ft = await model('ft', [['w', 'F32', [3, 4]]]);
    expectAlignmentError(() => alignModels(base, [ft], strict), 'w', /shape \[4, 3\] in base.safetensors but \[3, 4\] in ft.safetensors/);
  });

  it('rejects mixed float dtypes unless allowed, keeping the base dtype', async () => {
    const base = await model('base', [['w', 'F32', [2]]]);
    const ft = await model('ft', [['w', 'BF16', [2]]]);
    expectAlignmentError(() => alignModels(base, [ft], strict), 'w', /"w" is F32 in base.safetensors but BF16 in ft.safetensors/, /allow mixed/);
    expect(alignModels(base, [ft], { ...strict, mixedDtypes: true })).toEqual([
      { name: 'w', shape: [2], dtype: 'F32', action: 'merge', numel: 2 },
    ]);
  });

  it('always rejects float against non-float, and differing non-float dtypes', async () => {
    const mixed: AlignOptions = { ...strict, mixedDtypes: true };
    const base = await model('base', [['w', 'F32', [2]], ['ids', 'I64', [2]]]);
    const floatVsInt = await model('ft', [['w', 'I32', [2]], ['ids', 'I64', [2]]]);
    expectAlignmentError(() => alignModels(base, [floatVsInt], mixed), 'w', /"w" is F32 in base.safetensors but I32 in ft.safetensors$/);
    const intVsInt = await model('ft', [['w', 'F16', [2]], ['ids', 'I32', [2]]]);
    expectAlignmentError(() => alignModels(base, [intVsInt], mixed), 'ids', /"ids" is I64 in base.safetensors but I32/);
  });
});
