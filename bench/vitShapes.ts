/**
 * The parameter tensors of a Hugging Face CLIPVisionModel (ViT-B/32: width 768, 12 layers, MLP 3072, 32x32 patches,
 * 50 positions; 87,456,000 parameters; /work/shared/docs/methods.md section 0), optionally scaled down in width and
 * depth for the workloads that cannot run at full size on a CPU-emulated GPU. Names carry the state dict's
 * `vision_model.` prefix, so the engine's layer detection (LiNeS depth) sees the same 12 layers as on real models.
 */
import { numelOf } from '../src/engine/types';

/** Sizes of a CLIP vision tower; the defaults are ViT-B/32. */
export interface VitSize {
  width: number;
  layers: number;
  /** MLP hidden width (4x the width in CLIP). */
  mlp: number;
  patch: number;
  positions: number;
}

export const VIT_B32: VitSize = { width: 768, layers: 12, mlp: 3072, patch: 32, positions: 50 };

/** One tensor of the list. */
export interface ShapedTensor {
  name: string;
  shape: number[];
}

/** ViT-B/32 divided in width by `widthDivisor` (MLP and patch embedding follow) with `layers` encoder layers. */
export function scaledVit(widthDivisor: number, layers = VIT_B32.layers): VitSize {
  if (!Number.isInteger(widthDivisor) || widthDivisor < 1 || VIT_B32.width % widthDivisor !== 0) {
    throw new RangeError(`scaledVit: widthDivisor must divide ${VIT_B32.width}, got ${widthDivisor}`);
  }
  if (!Number.isInteger(layers) || layers < 1) throw new RangeError(`scaledVit: layers must be a positive integer, got ${layers}`);
  return { ...VIT_B32, width: VIT_B32.width / widthDivisor, mlp: VIT_B32.mlp / widthDivisor, layers };
}

/** The tensors of a CLIPVisionModel of size `s`, in the module order of its state dict. */
export function vitTensors(s: VitSize = VIT_B32): ShapedTensor[] {
  const D = s.width;
  const out: ShapedTensor[] = [
    { name: 'vision_model.embeddings.class_embedding', shape: [D] },
    { name: 'vision_model.embeddings.patch_embedding.weight', shape: [D, 3, s.patch, s.patch] },
    { name: 'vision_model.embeddings.position_embedding.weight', shape: [s.positions, D] },
    { name: 'vision_model.pre_layrnorm.weight', shape: [D] },
    { name: 'vision_model.pre_layrnorm.bias', shape: [D] },
  ];
  for (let i = 0; i < s.layers; i++) {
    const l = `vision_model.encoder.layers.${i}`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      out.push({ name: `${l}.self_attn.${proj}.weight`, shape: [D, D] }, { name: `${l}.self_attn.${proj}.bias`, shape: [D] });
    }
    out.push(
      { name: `${l}.layer_norm1.weight`, shape: [D] },
      { name: `${l}.layer_norm1.bias`, shape: [D] },
      { name: `${l}.mlp.fc1.weight`, shape: [s.mlp, D] },
      { name: `${l}.mlp.fc1.bias`, shape: [s.mlp] },
      { name: `${l}.mlp.fc2.weight`, shape: [D, s.mlp] },
      { name: `${l}.mlp.fc2.bias`, shape: [D] },
      { name: `${l}.layer_norm2.weight`, shape: [D] },
      { name: `${l}.layer_norm2.bias`, shape: [D] },
    );
  }
  out.push({ name: 'vision_model.post_layernorm.weight', shape: [D] }, { name: 'vision_model.post_layernorm.bias', shape: [D] });
  return out;
}

/** Total number of parameters of a tensor list. */
export function parameterCount(tensors: readonly ShapedTensor[]): number {
  return tensors.reduce((n, t) => n + numelOf(t.shape), 0);
}

/** A short label of a size: "ViT-B/32" at full size, else "ViT-B/32 width/4, 12 layers". */
export function sizeLabel(s: VitSize): string {
  if (s.width === VIT_B32.width && s.layers === VIT_B32.layers) return 'ViT-B/32';
  return `ViT-B/32 width/${VIT_B32.width / s.width}, ${s.layers} layer${s.layers === 1 ? '' : 's'}`;
}
