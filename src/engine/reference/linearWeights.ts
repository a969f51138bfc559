/**
 * Which tensors are the weights of Linear layers: the ones OPCM projects through an SVD (methods.md 1.5) and the
 * ones DARE's `linear_only` drops (FusionBench only_on_linear_weights).
 *
 * Rule: a tensor is a Linear weight when it is 2-D, its name is `weight` or ends in `.weight`, and the name has no
 * embedding or normalisation marker (NOT_LINEAR below). For HF CLIP that selects `*_proj.weight`, `fc1.weight`,
 * `fc2.weight` and `visual_projection.weight`, and rejects `position_embedding.weight` (2-D, but an Embedding),
 * `patch_embedding.weight` (4-D Conv2d), LayerNorm weights (1-D) and `class_embedding` (1-D, no `.weight`).
 * Also rejected: direct parameters such as open_clip's `positional_embedding`, `proj` and the fused
 * `attn.in_proj_weight` (no `.weight` suffix; the official code never projects them either, since it only treats
 * `nn.Linear` modules as Linear). GPT-2 Conv1D weights (`c_attn.weight`, stored transposed) count as Linear; the
 * projection is transpose-equivariant, so their layout does not matter.
 */

/**
 * Names of embedding tables and normalisation layers: `embed` anywhere (embeddings, embed_tokens), GPT-2's
 * `wte`/`wpe`, T5's `shared`, `norm`, `ln_*`/`ln_f`.
 */
const NOT_LINEAR = /embed|(^|\.)(wte|wpe|shared)\.|norm|(^|\.)ln(_[^.]*)?\./i;

/** True if the tensor is a Linear layer's weight matrix (2-D, named `*.weight`, not an embedding or norm). */
export function isLinearWeight(name: string, shape: readonly number[]): boolean {
  if (shape.length !== 2) return false;
  if (name !== 'weight' && !name.endsWith('.weight')) return false;
  return !NOT_LINEAR.test(name);
}
