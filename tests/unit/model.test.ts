import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/engine/errors';
import { memorySource, type ByteSource } from '../../src/engine/io/byteSource';
import { openShardedModel, openSingleFileModel } from '../../src/engine/io/model';
import { makeModelBytes, makeRelatedModels, type FixtureTensor } from '../helpers/safetensorsFixtures';

const shapes = { 'a.weight': [4, 3], 'a.bias': [4], 'b.weight': [2, 4], 'b.bias': [2], 'c.weight': [5], 'c.scale': [] };
const { base: tensors } = makeRelatedModels({ seed: 3, dtype: 'BF16', models: 0, shapes });
const byName = (name: string) => tensors.find((t) => t.name === name)!;

const SHARDS: Record<string, string> = {
  a: 'model-00001-of-00003.safetensors',
  b: 'model-00002-of-00003.safetensors',
  c: 'model-00003-of-00003.safetensors',
};
const shardOf = (tensor: string) => SHARDS[tensor[0]!]!;

/** Three shards: a.* in shard 1 (with metadata), b.* in shard 2 (with metadata), c.* in shard 3. */
function shardFiles(): Record<string, Uint8Array> {
  const pick = (prefix: string) => tensors.filter((t) => t.name.startsWith(prefix));
  return {
    [SHARDS['a']!]: makeModelBytes(pick('a.'), { format: 'pt', shard: '1' }),
    [SHARDS['b']!]: makeModelBytes(pick('b.'), { format: 'pt', shard: '2' }),
    [SHARDS['c']!]: makeModelBytes(pick('c.')),
  };
}

/** The correct weight map, with some entries replaced. */
function weightMapFor(overrides: Record<string, string> = {}): Record<string, string> {
  return { ...Object.fromEntries(tensors.map((t) => [t.name, shardOf(t.name)])), ...overrides };
}

function indexSource(json: unknown): ByteSource {
  const text = typeof json === 'string' ? json : JSON.stringify(json);
  return memorySource('model.safetensors.index.json', new TextEncoder().encode(text));
}

/** Opens a sharded model over in-memory shards, counting how often each shard is opened. */
async function openSharded(index: unknown, files: Record<string, Uint8Array> = shardFiles()) {
  const opened: string[] = [];
  const model = await openShardedModel('sharded', indexSource(index), async (name) => {
    opened.push(name);
    const bytes = files[name];
    if (!bytes) throw new Error(`${name}: no such shard`);
    return memorySource(name, bytes);
  });
  return { model, opened };
}

async function expectIndexError(index: unknown, pattern: RegExp, files?: Record<string, Uint8Array>): Promise<void> {
  const error = await openSharded(index, files).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FormatError);
  expect((error as FormatError).file).toBe('model.safetensors.index.json');
  expect((error as Error).message).toMatch(pattern);
}

describe('openSingleFileModel', () => {
  it('exposes every tensor, its file and the metadata', async () => {
    const model = await openSingleFileModel('single', memorySource('single.safetensors', makeModelBytes(tensors, { format: 'pt' })));
    expect(model.name).toBe('single');
    expect(model.files).toEqual(['single.safetensors']);
    expect(model.metadata).toEqual({ format: 'pt' });
    expect([...model.tensors.keys()].sort()).toEqual(Object.keys(shapes).sort());
    for (const t of tensors) expect(await model.readTensor(t.name)).toEqual(t.data);
    expect(await model.readTensor('a.weight', { start: 3, count: 2 })).toEqual(byName('a.weight').data.subarray(6, 10));
    await expect(model.readTensor('missing')).rejects.toThrow(/single: no tensor named "missing"/);
  });

  it('has empty metadata when the file has none', async () => {
    const model = await openSingleFileModel('m', memorySource('m', makeModelBytes(tensors.slice(0, 1))));
    expect(model.metadata).toEqual({});
  });
});

describe('openShardedModel', () => {
  it('reads three shards as one model, opening each shard once', async () => {
    const files = shardFiles();
    const { model, opened } = await openSharded({ metadata: { total_size: 1234 }, weight_map: weightMapFor() }, files);
    expect(opened.sort()).toEqual(Object.keys(files).sort());
    expect(model.files.sort()).toEqual(Object.keys(files).sort());
    expect(model.tensors.size).toBe(tensors.length);
    for (const t of tensors) {
      expect(await model.readTensor(t.name)).toEqual(t.data);
      expect(model.tensors.get(t.name)!.file.name).toBe(weightMapFor()[t.name]);
    }
    // Shard header metadata (earlier shards win) overridden by the index metadata; numbers kept as text.
    expect(model.metadata).toEqual({ format: 'pt', shard: '1', total_size: '1234' });
  });

  it.each([
    ['not JSON', '{"weight_map": ', /index is not valid UTF-8 JSON/],
    ['not an object', '[1]', /index must be a JSON object/],
    ['without weight_map', { metadata: {} }, /"weight_map" must be an object/],
    ['with an empty weight_map', { weight_map: {} }, /"weight_map" is empty/],
    ['with a non-string shard', { weight_map: { x: 3 } }, /weight_map\["x"\] must be a shard file name/],
    ['with a shard in a folder', { weight_map: { x: 'sub/model.safetensors' } }, /weight_map\["x"\] = "sub\/model.safetensors" is not a plain file name/],
    ['with a parent-folder shard', { weight_map: { x: '..' } }, /weight_map\["x"\] = "\.\." is not a plain file name/],
    ['with a backslash shard', { weight_map: { x: '..\\evil.safetensors' } }, /not a plain file name/],
    ['with an empty tensor name', { weight_map: { '': 'a.safetensors' } }, /empty tensor name/],
    ['with bad metadata', { metadata: [1], weight_map: { x: 'a' } }, /"metadata" must be an object/],
    ['with nested metadata', { metadata: { a: { b: 1 } }, weight_map: { x: 'a' } }, /metadata\["a"\] must be a string, number or boolean/],
  ])('rejects an index %s', async (_what, index, pattern) => {
    await expectIndexError(index, pattern);
  });

  it('rejects a JSON nesting bomb as an index', async () => {
    await expectIndexError('['.repeat(100_000), /not valid UTF-8 JSON/);
  });

  it('requires every weight_map tensor to be in its shard', async () => {
    const files = shardFiles();
    const map = { ...weightMapFor(), 'ghost.weight': 'model-00003-of-00003.safetensors' };
    await expectIndexError({ weight_map: map }, /"ghost.weight" in model-00003-of-00003.safetensors, but that shard .* lacks it/, files);
  });

  it('rejects a tensor placed in the wrong shard', async () => {
    const files = shardFiles();
    const map = weightMapFor({ 'a.bias': 'model-00002-of-00003.safetensors' });
    await expectIndexError({ weight_map: map }, /"a.bias" is in shard model-00001-of-00003.safetensors, but weight_map places it in model-00002/, files);
  });

  it('rejects a shard tensor missing from weight_map', async () => {
    const files = shardFiles();
    const map = weightMapFor();
    delete map['c.scale'];
    await expectIndexError({ weight_map: map }, /"c.scale" is in shard model-00003-of-00003.safetensors but not in weight_map/, files);
  });

  it('rejects a tensor present in two shards, naming both', async () => {
    const files = shardFiles();
    const dup: FixtureTensor[] = [byName('c.weight'), byName('c.scale'), byName('a.bias')];
    files['model-00003-of-00003.safetensors'] = makeModelBytes(dup);
    await expectIndexError(
      { weight_map: weightMapFor() },
      /"a.bias" is in two shards: model-00001-of-00003.safetensors and model-00003-of-00003.safetensors/,
      files,
    );
  });

  it('passes shard open errors and shard format errors through', async () => {
    const files = shardFiles();
    await expect(openSharded({ weight_map: weightMapFor({ 'a.bias': 'missing.safetensors' }) }, files)).rejects.toThrow(
      /missing.safetensors: no such shard/,
    );
    files['model-00002-of-00003.safetensors'] = new Uint8Array(4);
    await expect(openSharded({ weight_map: weightMapFor() }, files)).rejects.toThrow(/model-00002-of-00003.safetensors: file is truncated/);
  });
});
