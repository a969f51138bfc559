/**
 * CPU twin of the GPU text tower (src/engine/eval/textTower.ts): the readable spec of Hugging Face's
 * CLIPTextModel + text_projection in float64, with the layout conventions of src/engine/reference/vit.ts. B
 * sequences of T token ids (row-major), D hidden size, E projection size.
 *
 *   x = token_embedding[ids] + position_embedding[0..T-1]                 (B, T, D)
 *   per layer (pre-LN, causal attention: token t sees tokens 0..t): as the vision tower's encoder
 *   pooled = final_layer_norm(x[b, eos_b])    eos_b from eosPositions (the end-of-text token)     (B, D)
 *   features = pooled text_projection^T when the model has one                                    (B, E)
 */
import { eosPositions, type TextConfig } from '../eval/textConfig';
import { encoderRef, layerNormRef, linearRef, type RefWeights } from './vit';

/** Token plus position embeddings: ids (B*T) -> x (B*T, D). */
export function textEmbedRef(config: TextConfig, weights: RefWeights, ids: ArrayLike<number>, batch: number, tokens: number): Float64Array {
  const d = config.hiddenSize;
  const table = weights('embeddings.token_embedding.weight');
  const pos = weights('embeddings.position_embedding.weight');
  const x = new Float64Array(batch * tokens * d);
  for (let r = 0; r < batch * tokens; r++) {
    const id = ids[r]!;
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) throw new RangeError(`token id ${id} at ${r} is outside the vocabulary (size ${config.vocabSize})`);
    const t = r % tokens;
    for (let i = 0; i < d; i++) x[r * d + i] = table[id * d + i]! + pos[t * d + i]!;
  }
  return x;
}

/** Text features (B, F) of `batch` sequences of `tokens` ids each (padded after the end-of-text token). */
export function textFeaturesRef(config: TextConfig, weights: RefWeights, ids: ArrayLike<number>, batch: number, tokens: number): Float64Array {
  if (tokens > config.maxPositions) throw new RangeError(`sequences of ${tokens} tokens exceed max_position_embeddings ${config.maxPositions}`);
  if (ids.length < batch * tokens) throw new RangeError(`textFeaturesRef: ${ids.length} ids for ${batch} x ${tokens}`);
  const d = config.hiddenSize;
  const x = encoderRef(config, weights, textEmbedRef(config, weights, ids, batch, tokens), batch, tokens, true);
  const eos = eosPositions(ids, batch, tokens, config.eosTokenId);
  const picked = new Float64Array(batch * d);
  eos.forEach((t, b) => picked.set(x.subarray((b * tokens + t) * d, (b * tokens + t + 1) * d), b * d));
  const pooled = layerNormRef(picked, batch, d, d, weights('final_layer_norm.weight'), weights('final_layer_norm.bias'), config.layerNormEps);
  if (config.projectionDim === null) return pooled;
  return linearRef(pooled, batch, weights('text_projection.weight'), null, d, config.projectionDim);
}
