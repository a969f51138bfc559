/**
 * An evaluation suite: a base vision tower, one fine-tuned model per task, fixed per-task classification heads built
 * from the base (the CLIP zero-shot protocol: heads are never merged), and each task's test images. Described by a
 * manifest (public/demo/manifest.json for the embedded demo); files are read through a `SuiteFiles` provider so the
 * same code loads a suite from a web server, local files or a folder in Node. Suites of Hub models and datasets
 * (hubSuite.ts) fill the same types, with repo ids for paths and images decoded on demand (LoadedTask.pixels).
 */
import { FormatError } from '../errors';
import { memorySource, type ByteSource } from '../io/byteSource';
import { openSingleFileModel, type Model } from '../io/model';
import { openSafetensors } from '../io/safetensorsReader';
import { decodeToF32 } from '../tensor/dtype';
import { parseVisionConfig, resolveVisionWeights, type VisionConfig } from './visionConfig';

export interface SuiteTask {
  id: string;
  title: string;
  description: string;
  classes: string[];
  model: string;
  head: string;
  data: string;
  /** Accuracies (%) measured by the tool that made the suite, for reference. */
  individualAccuracy: number | null;
  baseAccuracy: number | null;
}

export interface SuiteManifest {
  format: 1;
  name: string;
  image: { height: number; width: number; channels: number; mean: number; std: number };
  base: { path: string; config: string };
  tasks: SuiteTask[];
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Opens a file of the suite by its path relative to the suite root. */
export interface SuiteFiles {
  readonly root: string;
  open(path: string): Promise<ByteSource>;
}

/** A task's fixed head and test set. */
export interface LoadedTask {
  task: SuiteTask;
  model: Model;
  head: { weight: Float32Array; classes: number; dim: number; logitScale: number };
  /** Embedded suites: u8 pixels [count, C, H, W], normalised with manifest.image's mean and std. Empty when `pixels` is set. */
  images: Uint8Array;
  /** Class index of every test image (Int32Array for tasks with more than 256 classes, e.g. SUN397). */
  labels: Uint8Array | Int32Array;
  count: number;
  /**
   * Hub suites: the model input of test images `indices` (f32 [n, C, H, W], preprocessed and normalised), decoded
   * on demand from the task's parquet files instead of held in memory.
   */
  pixels?: (indices: ArrayLike<number>, signal?: AbortSignal) => Promise<Float32Array<ArrayBuffer>>;
}

export interface Suite {
  manifest: SuiteManifest;
  config: VisionConfig;
  base: Model;
  tasks: LoadedTask[];
  /** Hub suites: each task's test set as `datasets/org/name@revision` (a commit where the Hub access resolves one). */
  datasets?: string[];
}

const str = (file: string, field: string, v: unknown): string => {
  if (typeof v !== 'string' || !v) throw new FormatError(file, `${field} must be a non-empty string`);
  return v;
};
const num = (file: string, field: string, v: unknown, min = -Infinity): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new FormatError(file, `${field} must be a number >= ${min}`);
  return v;
};
const safePath = (file: string, field: string, v: unknown): string => {
  const p = str(file, field, v);
  if (p.startsWith('/') || p.split('/').some((part) => part === '..' || part === '') || p.includes('\\')) {
    throw new FormatError(file, `${field} must be a relative path inside the suite, got ${JSON.stringify(p)}`);
  }
  return p;
};

/** Validates a suite manifest; every problem is a FormatError naming the field. */
export function parseManifest(json: unknown, file = 'manifest.json'): SuiteManifest {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new FormatError(file, 'must be a JSON object');
  const m = json as Record<string, unknown>;
  if (m.format !== 1) throw new FormatError(file, `format must be 1, got ${JSON.stringify(m.format)}`);
  const image = (m.image ?? {}) as Record<string, unknown>;
  const base = (m.base ?? {}) as Record<string, unknown>;
  if (!Array.isArray(m.tasks) || m.tasks.length === 0) throw new FormatError(file, 'tasks must be a non-empty list');
  const files = (m.files ?? {}) as Record<string, { bytes?: unknown; sha256?: unknown }>;
  const out: SuiteManifest = {
    format: 1,
    name: str(file, 'name', m.name),
    image: {
      height: num(file, 'image.height', image.height, 1),
      width: num(file, 'image.width', image.width, 1),
      channels: num(file, 'image.channels', image.channels, 1),
      mean: num(file, 'image.mean', image.mean),
      std: num(file, 'image.std', image.std, Number.MIN_VALUE),
    },
    base: { path: safePath(file, 'base.path', base.path), config: safePath(file, 'base.config', base.config) },
    tasks: m.tasks.map((t, i) => {
      const r = (t ?? {}) as Record<string, unknown>;
      const f = `tasks[${i}]`;
      if (!Array.isArray(r.classes) || r.classes.length < 2) throw new FormatError(file, `${f}.classes must list at least two class names`);
      return {
        id: str(file, `${f}.id`, r.id),
        title: str(file, `${f}.title`, r.title),
        description: typeof r.description === 'string' ? r.description : '',
        classes: r.classes.map((c, j) => str(file, `${f}.classes[${j}]`, c)),
        model: safePath(file, `${f}.model`, r.model),
        head: safePath(file, `${f}.head`, r.head),
        data: safePath(file, `${f}.data`, r.data),
        individualAccuracy: typeof r.individual_accuracy === 'number' ? r.individual_accuracy : null,
        baseAccuracy: typeof r.base_accuracy === 'number' ? r.base_accuracy : null,
      };
    }),
    files: {},
  };
  for (const [path, info] of Object.entries(files)) {
    out.files[safePath(file, `files key`, path)] = { bytes: num(file, `files["${path}"].bytes`, info?.bytes, 0), sha256: str(file, `files["${path}"].sha256`, info?.sha256) };
  }
  const ids = new Set(out.tasks.map((t) => t.id));
  if (ids.size !== out.tasks.length) throw new FormatError(file, 'task ids must be unique');
  return out;
}

async function readAll(src: ByteSource): Promise<Uint8Array> {
  return src.read(0, src.size);
}

/** Lowercase hex SHA-256 of `bytes` (Web Crypto, in browsers and Node alike). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Reads a whole file, checking its size and sha256 against the manifest when it lists the file. */
async function readChecked(files: SuiteFiles, manifest: SuiteManifest, path: string): Promise<Uint8Array> {
  const bytes = await readAll(await files.open(path));
  const want = manifest.files[path];
  if (want) {
    if (bytes.byteLength !== want.bytes) throw new FormatError(path, `has ${bytes.byteLength} bytes, the manifest says ${want.bytes}`);
    if ((await sha256Hex(bytes)) !== want.sha256) throw new FormatError(path, 'sha256 differs from the manifest (corrupt or changed file)');
  }
  return bytes;
}

/** Loads a suite: manifest, config, base and fine-tuned models (lazily read), heads and test sets (in memory, checked). */
export async function loadSuite(files: SuiteFiles): Promise<Suite> {
  const manifestBytes = await readAll(await files.open('manifest.json'));
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch (e) {
    throw new FormatError(`${files.root}/manifest.json`, `is not valid JSON (${(e as Error).message})`);
  }
  const manifest = parseManifest(json, `${files.root}/manifest.json`);
  const configBytes = await readChecked(files, manifest, manifest.base.config);
  let configJson: unknown;
  try {
    configJson = JSON.parse(new TextDecoder().decode(configBytes));
  } catch (e) {
    throw new FormatError(manifest.base.config, `is not valid JSON (${(e as Error).message})`);
  }
  const base = await openSingleFileModel(manifest.base.path, await files.open(manifest.base.path));
  // The checkpoint, not config.json, says whether a visual projection exists (resolveVisionWeights checks every shape).
  const baseTensors = [...base.tensors.values()].map((t) => ({ name: t.info.name, shape: t.info.shape }));
  const config = resolveVisionWeights(parseVisionConfig(configJson, manifest.base.config), baseTensors, manifest.base.path).config;
  const tasks: LoadedTask[] = [];
  for (const task of manifest.tasks) {
    const model = await openSingleFileModel(task.model, await files.open(task.model));
    const headFile = await openSafetensors(memorySource(task.head, await readChecked(files, manifest, task.head)));
    const weightInfo = headFile.tensor('weight');
    const scaleInfo = headFile.tensor('logit_scale');
    if (!weightInfo || weightInfo.shape.length !== 2) throw new FormatError(task.head, 'needs a 2-D tensor "weight" [classes, dim]');
    if (!scaleInfo) throw new FormatError(task.head, 'needs a tensor "logit_scale"');
    const [classes, dim] = weightInfo.shape as [number, number];
    if (classes !== task.classes.length) throw new FormatError(task.head, `has ${classes} classes, the manifest lists ${task.classes.length} for task ${task.id}`);
    const weight = decodeToF32(await headFile.readTensor('weight'), weightInfo.dtype);
    const logitScale = decodeToF32(await headFile.readTensor('logit_scale'), scaleInfo.dtype)[0]!;
    const dataFile = await openSafetensors(memorySource(task.data, await readChecked(files, manifest, task.data)));
    const imagesInfo = dataFile.tensor('images');
    const labelsInfo = dataFile.tensor('labels');
    const { height, width, channels } = manifest.image;
    if (!imagesInfo || imagesInfo.dtype !== 'U8' || imagesInfo.shape.length < 3) throw new FormatError(task.data, 'needs a U8 tensor "images" [N, H, W] (or [N, C, H, W])');
    if (!labelsInfo || labelsInfo.dtype !== 'U8' || labelsInfo.shape.length !== 1) throw new FormatError(task.data, 'needs a U8 tensor "labels" [N]');
    const count = imagesInfo.shape[0]!;
    if (imagesInfo.shape.slice(1).reduce((a, b) => a * b, 1) !== height * width * channels) {
      throw new FormatError(task.data, `images have shape [${imagesInfo.shape.join(', ')}], expected ${channels}x${height}x${width} per image`);
    }
    if (labelsInfo.shape[0] !== count) throw new FormatError(task.data, `has ${count} images but ${labelsInfo.shape[0]} labels`);
    const labels = await dataFile.readTensor('labels');
    const bad = labels.findIndex((l) => l >= classes);
    if (bad >= 0) throw new FormatError(task.data, `label ${labels[bad]} of image ${bad} is not a class of task ${task.id} (${classes} classes)`);
    tasks.push({ task, model, head: { weight, classes, dim, logitScale }, images: await dataFile.readTensor('images'), labels, count });
  }
  return { manifest, config, base, tasks };
}
