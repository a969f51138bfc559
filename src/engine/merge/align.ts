/**
 * Lines up a base model with its fine-tuned models before merging: every fine-tuned tensor must exist in the
 * base with the same shape (and dtype, unless mixing float dtypes is allowed). Float tensors are merged;
 * integer and boolean tensors (position ids, masks) keep the base's values.
 */
import { AlignmentError } from '../errors';
import type { Model } from '../io/model';
import { isFloatDType, numelOf, type DType } from '../types';

/** How to treat what is not shared by all models. */
export interface AlignOptions {
  /** Tensors only the base has: copy them to the output, or leave them out. */
  extraBaseTensors: 'passthrough' | 'ignore';
  /** Allow a tensor to be F32 in one model and F16/BF16/F64 in another. */
  mixedDtypes: boolean;
}

/** One output tensor and what to do with it. */
export interface AlignedTensor {
  name: string;
  shape: number[];
  /** The base model's dtype. */
  dtype: DType;
  action: 'merge' | 'passthrough';
  numel: number;
}

/** Where a model's tensor lives, for error messages. */
function whereIn(model: Model, tensor: string): string {
  const t = model.tensors.get(tensor);
  return t ? t.file.name : model.files.join(', ');
}

const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** Checks that the models line up and returns the output tensors, sorted by name. */
export function alignModels(base: Model, models: Model[], opts: AlignOptions): AlignedTensor[] {
  if (models.length === 0) throw new AlignmentError('', 'need at least one fine-tuned model to merge with the base');
  const baseFiles = base.files.join(', ');

  const shared = new Set<string>();
  for (const model of models) {
    for (const name of [...model.tensors.keys()].sort()) {
      if (!base.tensors.has(name)) {
        throw new AlignmentError(name, `tensor "${name}" of ${whereIn(model, name)} is not in the base model (${baseFiles})`);
      }
      shared.add(name);
    }
  }

  const out: AlignedTensor[] = [];
  for (const name of [...base.tensors.keys()].sort()) {
    const b = base.tensors.get(name)!.info;
    const baseFile = whereIn(base, name);
    if (!shared.has(name)) {
      if (opts.extraBaseTensors === 'passthrough') out.push(aligned(b.name, b.shape, b.dtype, 'passthrough'));
      continue;
    }
    for (const model of models) {
      const t = model.tensors.get(name);
      if (!t) {
        const holder = models.find((m) => m.tensors.has(name))!;
        const lacking = `${model.name} (${model.files.join(', ')})`;
        throw new AlignmentError(name, `tensor "${name}" is missing from ${lacking}, but ${holder.name} (${whereIn(holder, name)}) has it`);
      }
      const { shape, dtype } = t.info;
      if (shapeText(shape) !== shapeText(b.shape)) {
        throw new AlignmentError(
          name,
          `tensor "${name}" has shape ${shapeText(b.shape)} in ${baseFile} but ${shapeText(shape)} in ${t.file.name}`,
        );
      }
      if (dtype !== b.dtype) {
        const floatsOnly = isFloatDType(dtype) && isFloatDType(b.dtype);
        if (!opts.mixedDtypes || !floatsOnly) {
          const hint = floatsOnly ? ' (allow mixed float dtypes to merge them anyway)' : '';
          throw new AlignmentError(name, `tensor "${name}" is ${b.dtype} in ${baseFile} but ${dtype} in ${t.file.name}${hint}`);
        }
      }
    }
    out.push(aligned(name, b.shape, b.dtype, isFloatDType(b.dtype) ? 'merge' : 'passthrough'));
  }
  return out;
}

function aligned(name: string, shape: number[], dtype: DType, action: AlignedTensor['action']): AlignedTensor {
  return { name, shape: [...shape], dtype, action, numel: numelOf(shape) };
}
