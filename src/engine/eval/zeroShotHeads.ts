/**
 * CLIP zero-shot classification heads from the base model's text tower, as FusionBench builds them
 * (`HFCLIPClassifier.set_classification_task`): every class name is put into every prompt template, tokenized with
 * the base repo's tokenizer, embedded by the text tower with its projection; each prompt embedding is L2-normalised,
 * the embeddings of a class are averaged over the templates, and the average is L2-normalised again. The head's
 * logit scale is exp(logit_scale) of the base model. Heads never change with the merged vision tower, so callers
 * compute a head once and cache it under zeroShotHeadCacheKey().
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError } from '../errors';
import type { GpuContext } from '../gpu/device';
import { readBuffer } from '../gpu/kernels';
import type { Model } from '../io/model';
import { decodeFloats, decodeToF32, encodeFloats } from '../tensor/dtype';
import { fillTemplate, type TaskPrompts } from './fusionbench/prompts';
import { sha256Hex, type LoadedTask } from './suite';
import { parseTextConfig, resolveTextWeights } from './textConfig';
import { TextTransformer } from './textTower';
import { tensorToGpu } from './weights';

/** Text to token ids, with the start- and end-of-text tokens. */
export interface PromptTokenizer {
  encode(text: string): number[];
}

/** The tokenizer of a Hub repo from its tokenizer.json (and tokenizer_config.json when it has one). */
export function clipTokenizer(tokenizerJson: unknown, tokenizerConfig: unknown = {}, fileName = 'tokenizer.json'): PromptTokenizer {
  if (typeof tokenizerJson !== 'object' || tokenizerJson === null || typeof (tokenizerJson as { model?: unknown }).model !== 'object') {
    throw new FormatError(fileName, 'is not a tokenizers JSON file (no "model" object)');
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, (tokenizerConfig ?? {}) as object);
  } catch (e) {
    throw new FormatError(fileName, `cannot be loaded (${(e as Error).message})`);
  }
  return { encode: (text) => tokenizer.encode(text).ids };
}

/**
 * Token ids of `texts`, one row per text, truncated to `maxTokens` (keeping the start and end tokens, as
 * transformers' truncation does) and padded to the longest row with the row's own end-of-text id: padding follows
 * the end, so the causal text tower ignores it, and repeating the end id keeps both pooling rules (first largest
 * id, first eos id) on the real end.
 */
export function tokenizePrompts(tokenizer: PromptTokenizer, texts: readonly string[], maxTokens: number): { ids: Int32Array; tokens: number } {
  const rows = texts.map((text) => {
    const ids = tokenizer.encode(text);
    if (ids.length < 2) throw new FormatError('tokenizer.json', `encodes ${JSON.stringify(text)} without start and end tokens (${ids.length} ids); CLIP prompts need both`);
    return ids.length <= maxTokens ? ids : [...ids.slice(0, maxTokens - 1), ids[ids.length - 1]!];
  });
  const tokens = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * tokens);
  rows.forEach((row, i) => {
    ids.set(row, i * tokens);
    ids.fill(row[row.length - 1]!, i * tokens + row.length, (i + 1) * tokens);
  });
  return { ids, tokens };
}

function normalizeInPlace(row: Float64Array): void {
  let sq = 0;
  for (const v of row) sq += v * v;
  const inv = 1 / Math.max(Math.sqrt(sq), 1e-12);
  for (let i = 0; i < row.length; i++) row[i]! *= inv;
}

/**
 * Class embeddings [classes, dim] from prompt embeddings [classes * templates, dim] (class-major: prompt
 * c * templates + t): normalise each prompt, average a class's prompts, normalise the average.
 */
export function averageClassEmbeddings(features: ArrayLike<number>, classes: number, templates: number, dim: number): Float32Array {
  if (features.length !== classes * templates * dim) throw new RangeError(`${features.length} values for ${classes} classes x ${templates} templates x ${dim}`);
  const out = new Float32Array(classes * dim);
  const row = new Float64Array(dim);
  const sum = new Float64Array(dim);
  for (let c = 0; c < classes; c++) {
    sum.fill(0);
    for (let t = 0; t < templates; t++) {
      const at = (c * templates + t) * dim;
      for (let i = 0; i < dim; i++) row[i] = features[at + i]!;
      normalizeInPlace(row);
      for (let i = 0; i < dim; i++) sum[i]! += row[i]!;
    }
    for (let i = 0; i < dim; i++) sum[i]! /= templates;
    normalizeInPlace(sum);
    out.set(sum, c * dim);
  }
  return out;
}

/** A base model's text tower on the GPU with the base's logit scale. */
export interface TextTower {
  tower: TextTransformer;
  /** exp(logit_scale) of the base model. */
  logitScale: number;
  destroy(): void;
}

/** exp(logit_scale) of a CLIPModel checkpoint: the factor on cosine similarities that makes them logits. */
export async function readLogitScale(base: Model, signal?: AbortSignal): Promise<number> {
  const info = base.tensors.get('logit_scale')?.info;
  if (!info || info.shape.reduce((a, b) => a * b, 1) !== 1) throw new FormatError(base.name, 'has no scalar tensor "logit_scale"; zero-shot heads need the CLIPModel checkpoint of the base');
  return Math.exp(decodeFloats(await base.readTensor('logit_scale', undefined, signal), info.dtype)[0]!);
}

/**
 * Uploads the text tower of a CLIPModel checkpoint (`text_model.*`, `text_projection.weight`, `logit_scale`),
 * configured by its config.json value; `maxBatch` prompts go through the tower at once.
 */
export async function openTextTower(ctx: GpuContext, base: Model, configJson: unknown, configName: string, maxBatch: number, signal?: AbortSignal): Promise<TextTower> {
  const tensors = [...base.tensors.values()].map((t) => ({ name: t.info.name, shape: t.info.shape }));
  const { config, names } = resolveTextWeights(parseTextConfig(configJson, configName), tensors, base.name);
  if (config.projectionDim === null) throw new FormatError(base.name, 'has no "text_projection.weight"; zero-shot heads need the CLIPModel checkpoint of the base');
  const logitScale = await readLogitScale(base, signal);
  const buffers = new Map<string, GPUBuffer>();
  const free = () => buffers.forEach((b) => ctx.destroyBuffer(b));
  try {
    for (const [canonical, fileName] of names) buffers.set(canonical, await tensorToGpu(ctx, base, fileName, signal));
    const tower = new TextTransformer(ctx, config, (name) => buffers.get(name)!, maxBatch);
    return {
      tower,
      logitScale,
      destroy() {
        tower.destroy();
        free();
      },
    };
  } catch (e) {
    free();
    throw e;
  }
}

/**
 * The zero-shot head of one task: prompts (classes x templates) through the text tower in batches of the tower's
 * maxBatch, then averageClassEmbeddings. `onProgress(done, total)` counts prompts.
 */
export async function buildZeroShotHead(
  text: TextTower,
  tokenizer: PromptTokenizer,
  prompts: TaskPrompts,
  opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<LoadedTask['head']> {
  const { tower } = text;
  const texts = prompts.classes.flatMap((name) => prompts.templates.map((t) => fillTemplate(t, name)));
  if (prompts.classes.length < 2 || prompts.templates.length < 1) throw new FormatError('prompts', `need at least two classes and one template, got ${prompts.classes.length} and ${prompts.templates.length}`);
  const dim = tower.featureDim;
  const features = new Float32Array(texts.length * dim);
  for (let start = 0; start < texts.length; start += tower.maxBatch) {
    opts.signal?.throwIfAborted();
    const chunk = texts.slice(start, start + tower.maxBatch);
    const { ids, tokens } = tokenizePrompts(tokenizer, chunk, tower.maxTokens);
    const out = tower.features(ids, chunk.length, tokens);
    const bytes = await readBuffer(tower.ctx, out, chunk.length * dim * 4);
    features.set(new Float32Array(bytes.buffer, bytes.byteOffset, chunk.length * dim), start * dim);
    opts.onProgress?.(start + chunk.length, texts.length);
  }
  const weight = averageClassEmbeddings(features, prompts.classes.length, prompts.templates.length, dim);
  return { weight, classes: prompts.classes.length, dim, logitScale: text.logitScale };
}

/**
 * The key under which callers cache a head: SHA-256 of the base repo id, its revision (pin a commit hash, or the
 * key follows a moving branch name), and the exact class names and templates. Anything that changes the head
 * changes the key; the merged models do not enter it, since heads come from the frozen base.
 */
export async function zeroShotHeadCacheKey(baseRepo: string, revision: string, prompts: TaskPrompts): Promise<string> {
  const text = JSON.stringify({ format: 1, baseRepo, revision, classes: prompts.classes, templates: prompts.templates });
  return `zero-shot-head-${await sha256Hex(new TextEncoder().encode(text))}`;
}

/** Where callers keep zero-shot heads between sessions, by zeroShotHeadCacheKey (heads never change with merges). */
export interface HeadCache {
  get(key: string): Promise<Float32Array | null>;
  put(key: string, weight: Float32Array): Promise<void>;
}

/**
 * A HeadCache on a byte cache (the Hub download cache: Cache API in the page, a folder in Node), storing each head
 * as little-endian f32; the byte cache's own checksums guard the entries.
 */
export function headCacheOver(bytes: { get(key: string): Promise<Uint8Array | null>; put(key: string, value: Uint8Array): Promise<void> }): HeadCache {
  return {
    async get(key) {
      const stored = await bytes.get(key);
      return stored && stored.byteLength % 4 === 0 && stored.byteLength > 0 ? decodeToF32(stored, 'F32') : null;
    },
    put: (key, weight) => bytes.put(key, encodeFloats(weight, 'F32')),
  };
}
