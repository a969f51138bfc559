/**
 * A local stand-in for the Hugging Face Hub, for tests in Node and Chromium: an HTTP server speaking the endpoints the
 * Hub client uses (revision info, tree listing, discussions, `resolve/{rev}/{path}` with Range, ETag, X-Repo-Commit and a
 * redirect for LFS files, 401/403 for gated repos, 404), CORS for pages on another origin, a request log, and fault
 * injection (error statuses, dropped connections, delays, files changed between requests).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeModelBytes, makeRelatedModels, type FixtureTensor } from './safetensorsFixtures';

/** A discussion (or pull request) of a repo, as the discussions API lists it. */
export interface FakeDiscussion {
  num: number;
  title: string;
  author: string;
  status: 'open' | 'closed' | 'merged';
  isPullRequest: boolean;
}

/** A repo: revisions (branch, tag or refs/pr/N) each holding files; a gated repo needs `token`. */
export interface FakeRepo {
  id: string;
  type?: 'model' | 'dataset';
  token?: string;
  revisions: Record<string, Record<string, Uint8Array>>;
  discussions?: FakeDiscussion[];
}

/** One request as the server saw it (never the token: only whether one came, and whether it was right). */
export interface LoggedRequest {
  method: string;
  path: string;
  range: string | null;
  auth: 'none' | 'valid' | 'invalid';
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** The raw request URL, path and query (to check that a token never travels in one). */
  url: string;
}

/** An injected fault, applied to the next `times` matching requests (default: requests that send file bytes). */
export type Fault = { times: number; match?: (path: string, range: string | null) => boolean } & (
  | { kind: 'status'; status: number }
  | { kind: 'drop'; afterBytes: number }
  | { kind: 'delay'; ms: number }
);

export interface FakeHub {
  url: string;
  log: LoggedRequest[];
  faults: Fault[];
  /** The commit hash of a repo's revision. */
  commit(repo: string, revision: string): string;
  /** Replaces a file's bytes under the same commit (a file that changes between requests). */
  replaceFile(repo: string, revision: string, path: string, bytes: Uint8Array): void;
  /** Requests that sent file bytes (status 200 or 206 on resolve or LFS URLs; redirects left out), from the log. */
  fileRequests(): LoggedRequest[];
  close(): Promise<void>;
}

interface Revision {
  commit: string;
  files: Map<string, Uint8Array>;
}

interface Repo {
  spec: FakeRepo;
  revisions: Map<string, Revision>;
  byCommit: Map<string, Revision>;
}

const sha = (algo: 'sha1' | 'sha256', ...parts: (string | Uint8Array)[]) => {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

/** LFS files (served through a redirect, as the Hub serves large files) are the weights. */
const isLfs = (path: string) => /\.(safetensors|bin|parquet)$/.test(path);

/** Starts the server on 127.0.0.1 with a free port. */
export async function startFakeHub(repos: FakeRepo[]): Promise<FakeHub> {
  const table = new Map<string, Repo>();
  for (const spec of repos) {
    const revisions = new Map<string, Revision>();
    const byCommit = new Map<string, Revision>();
    for (const [name, files] of Object.entries(spec.revisions)) {
      const entries = Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1));
      const commit = sha('sha1', spec.id, name, ...entries.flatMap(([p, b]) => [p, b]));
      const rev = { commit, files: new Map(entries) };
      revisions.set(name, rev);
      byCommit.set(commit, rev);
    }
    table.set(`${spec.type ?? 'model'}:${spec.id}`, { spec, revisions, byCommit });
  }
  const log: LoggedRequest[] = [];
  const faults: Fault[] = [];

  const server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: (e as Error).message });
      else res.destroy();
    });
  });

  function cors(res: ServerResponse): void {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Range, Accept, Content-Type');
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    res.setHeader('Access-Control-Expose-Headers', 'ETag, Content-Range, Content-Length, Accept-Ranges, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, X-Error-Code, Link');
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    cors(res);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const range = req.headers.range ?? null;
    const entry: LoggedRequest = { method: req.method ?? 'GET', path: url.pathname, range, auth: 'none', status: 0, bytes: 0, url: req.url ?? '' };
    log.push(entry);
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      entry.status = status;
      send(res, status, body, headers);
    };
    if (req.method === 'OPTIONS') {
      entry.status = 204;
      res.writeHead(204).end();
      return;
    }
    const fault = takeFault(url.pathname, range);
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (fault?.kind === 'status') return reply(fault.status, { error: `injected HTTP ${fault.status}` });

    const segs = url.pathname.split('/').slice(1).map(decodeURIComponent);
    // /api/{models|datasets}/{org}/{name}/{revision|tree}/{rev}[/...] and /api/models/{org}/{name}/discussions
    if (segs[0] === 'api' && (segs[1] === 'models' || segs[1] === 'datasets')) {
      const repo = table.get(`${segs[1] === 'models' ? 'model' : 'dataset'}:${segs[2]}/${segs[3]}`);
      if (!repo) return reply(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      const denied = authorize(repo, req, entry);
      if (denied) return reply(denied, { error: denied === 401 ? 'Access to this repo is restricted: log in and pass a token' : 'Your token cannot read this repo' }, { 'X-Error-Code': 'GatedRepo' });
      if (segs[4] === 'discussions') {
        const list = (repo.spec.discussions ?? []).map((d) => ({ num: d.num, title: d.title, status: d.status, isPullRequest: d.isPullRequest, author: { name: d.author }, pinned: false, numComments: 1 }));
        return reply(200, { discussions: list, count: list.length, start: 0, numClosedDiscussions: 0 });
      }
      const rev = findRevision(repo, segs[5] ?? '');
      if (!rev) return reply(404, { error: `Invalid rev id: ${segs[5]}` }, { 'X-Error-Code': 'RevisionNotFound' });
      if (segs[4] === 'revision') {
        return reply(200, { _id: sha('sha1', repo.spec.id).slice(0, 24), id: repo.spec.id, sha: rev.commit, private: false, gated: repo.spec.token ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00.000Z', siblings: [...rev.files.keys()].map((rfilename) => ({ rfilename })) });
      }
      if (segs[4] === 'tree') {
        const under = segs.slice(6).join('/');
        const items = [...rev.files].filter(([p]) => !under || p.startsWith(`${under}/`)).map(([path, bytes]) => ({
          type: 'file',
          oid: sha('sha1', bytes),
          size: isLfs(path) ? 134 : bytes.byteLength,
          path,
          ...(isLfs(path) ? { lfs: { oid: sha('sha256', bytes), size: bytes.byteLength, pointerSize: 134 } } : {}),
        }));
        return reply(200, items);
      }
      return reply(404, { error: 'unknown API route' });
    }
    // /lfs/{type}/{org}/{name}/{commit}/{path}: where resolve redirects LFS files (as the Hub's CDN; no auth needed).
    if (segs[0] === 'lfs') {
      const repo = table.get(`${segs[1]}:${segs[2]}/${segs[3]}`);
      const rev = repo?.byCommit.get(segs[4] ?? '');
      const path = segs.slice(5).join('/');
      const bytes = rev?.files.get(path);
      if (!rev || !bytes) return reply(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      return serveBytes(req, res, entry, bytes, rev.commit, fault);
    }
    // /[datasets/]{org}/{name}/resolve/{rev}/{path}
    const dataset = segs[0] === 'datasets';
    const s = dataset ? segs.slice(1) : segs;
    if (s[2] === 'resolve') {
      const repo = table.get(`${dataset ? 'dataset' : 'model'}:${s[0]}/${s[1]}`);
      if (!repo) return reply(404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
      const denied = authorize(repo, req, entry);
      if (denied) return reply(denied, { error: 'Access to this repo is restricted' }, { 'X-Error-Code': 'GatedRepo' });
      const rev = findRevision(repo, s[3] ?? '');
      if (!rev) return reply(404, { error: 'Revision not found' }, { 'X-Error-Code': 'RevisionNotFound' });
      const path = s.slice(4).join('/');
      const bytes = rev.files.get(path);
      if (!bytes) return reply(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
      if (isLfs(path)) {
        entry.status = 302;
        const type = dataset ? 'dataset' : 'model';
        res.writeHead(302, {
          Location: `/lfs/${type}/${repo.spec.id}/${rev.commit}/${path.split('/').map(encodeURIComponent).join('/')}`,
          'X-Repo-Commit': rev.commit,
          'X-Linked-Etag': `"${sha('sha256', bytes)}"`,
          'X-Linked-Size': String(bytes.byteLength),
          'Content-Length': '0',
        });
        res.end();
        return;
      }
      return serveBytes(req, res, entry, bytes, rev.commit, fault);
    }
    reply(404, { error: `no route for ${url.pathname}` });
  }

  function findRevision(repo: Repo, name: string): Revision | undefined {
    return repo.revisions.get(name) ?? repo.byCommit.get(name);
  }

  function authorize(repo: Repo, req: IncomingMessage, entry: LoggedRequest): 401 | 403 | null {
    const header = req.headers.authorization;
    if (header) entry.auth = repo.spec.token && header === `Bearer ${repo.spec.token}` ? 'valid' : 'invalid';
    if (!repo.spec.token) return null;
    if (!header) return 401;
    return entry.auth === 'valid' ? null : 403;
  }

  function takeFault(path: string, range: string | null): Fault | null {
    // By default faults hit the requests that send file bytes (not the redirect in front of an LFS file).
    const carriesBytes = path.startsWith('/lfs/') || (path.includes('/resolve/') && !isLfs(path));
    const i = faults.findIndex((f) => (f.match ? f.match(path, range) : carriesBytes));
    if (i < 0) return null;
    const f = faults[i]!;
    if (--f.times <= 0) faults.splice(i, 1);
    return f;
  }

  function serveBytes(req: IncomingMessage, res: ServerResponse, entry: LoggedRequest, bytes: Uint8Array, commit: string, fault: Fault | null): void {
    const headers: Record<string, string> = { ETag: `"${sha('sha256', bytes)}"`, 'Accept-Ranges': 'bytes', 'X-Repo-Commit': commit, 'Content-Type': 'application/octet-stream' };
    let start = 0;
    let end = bytes.byteLength - 1;
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (req.headers.range) {
      if (!m || Number(m[1]) >= bytes.byteLength) {
        entry.status = 416;
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${bytes.byteLength}`, 'Content-Length': '0' }).end();
        return;
      }
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), bytes.byteLength - 1) : bytes.byteLength - 1;
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${bytes.byteLength}`;
    }
    const body = bytes.subarray(start, end + 1);
    entry.status = status;
    res.writeHead(status, { ...headers, 'Content-Length': String(body.byteLength) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (fault?.kind === 'drop') {
      const part = body.subarray(0, Math.min(fault.afterBytes, body.byteLength));
      entry.bytes = part.byteLength;
      // Flush what was promised so far, then cut the connection mid-body.
      res.write(part, () => setTimeout(() => res.destroy(), 5));
      return;
    }
    entry.bytes = body.byteLength;
    res.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    faults,
    commit(repo, revision) {
      const r = [...table.values()].find((x) => x.spec.id === repo)?.revisions.get(revision);
      if (!r) throw new Error(`fake hub: no revision ${revision} of ${repo}`);
      return r.commit;
    },
    replaceFile(repo, revision, path, bytes) {
      const r = [...table.values()].find((x) => x.spec.id === repo)?.revisions.get(revision);
      if (!r?.files.has(path)) throw new Error(`fake hub: no file ${path} in ${repo}@${revision}`);
      r.files.set(path, bytes);
    },
    fileRequests: () => log.filter((e) => (e.path.startsWith('/lfs/') || e.path.includes('/resolve/')) && (e.status === 200 || e.status === 206)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Splits tensors into `shards` safetensors files plus a model.safetensors.index.json, as sharded Hub checkpoints are. */
export function shardedFiles(tensors: FixtureTensor[], shards: number): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let i = 0; i < shards; i++) {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    const mine = tensors.filter((_, j) => j % shards === i);
    for (const t of mine) {
      weightMap[t.name] = name;
      total += t.data.byteLength;
    }
    files[name] = makeModelBytes(mine);
  }
  files['model.safetensors.index.json'] = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }));
  return files;
}

/** CLIP-layout tensor shapes: a tiny vision tower and a tiny text tower. */
export const CLIP_SHAPES: Record<string, number[]> = {
  'vision_model.embeddings.class_embedding': [16],
  'vision_model.embeddings.patch_embedding.weight': [16, 3, 4, 4],
  'vision_model.encoder.layers.0.self_attn.q_proj.weight': [16, 16],
  'vision_model.encoder.layers.0.self_attn.q_proj.bias': [16],
  'vision_model.encoder.layers.0.mlp.fc1.weight': [32, 16],
  'vision_model.post_layernorm.weight': [16],
  'text_model.embeddings.token_embedding.weight': [64, 16],
  'text_model.encoder.layers.0.self_attn.k_proj.weight': [16, 16],
  'text_model.final_layer_norm.weight': [16],
};

/** The standard repos of the Hub tests, with the tensors they hold (to compare what is read against). */
export interface StandardRepos {
  repos: FakeRepo[];
  base: FixtureTensor[];
  /** task-a (main), task-b (sharded), task-a@v1 (an older revision), gated. */
  taskA: FixtureTensor[];
  taskB: FixtureTensor[];
  taskAv1: FixtureTensor[];
  gated: FixtureTensor[];
  token: string;
}

/**
 * test-org/clip-base (single file + config.json), test-org/task-a (two revisions: main and tag v1), test-org/task-b
 * (sharded), test-org/gated-task (needs `token`), test-org/pt-only (no safetensors on main; a conversion PR refs/pr/2),
 * test-org/no-weights (pytorch weights only, no conversion), and the dataset repo datasets/test-org/tiny-data.
 */
export function standardRepos(seed = 7): StandardRepos {
  const { base, finetuned } = makeRelatedModels({ seed, dtype: 'F32', models: 4, shapes: CLIP_SHAPES });
  const [taskA, taskB, taskAv1, gated] = finetuned as [FixtureTensor[], FixtureTensor[], FixtureTensor[], FixtureTensor[]];
  const config = new TextEncoder().encode(JSON.stringify({ architectures: ['CLIPModel'], model_type: 'clip', projection_dim: 16 }));
  const pt = new TextEncoder().encode('not a safetensors file: pickled weights');
  const token = 'hf_FakeGatedToken0123456789';
  const repos: FakeRepo[] = [
    { id: 'test-org/clip-base', revisions: { main: { 'model.safetensors': makeModelBytes(base), 'config.json': config } } },
    { id: 'test-org/task-a', revisions: { main: { 'model.safetensors': makeModelBytes(taskA), 'config.json': config }, v1: { 'model.safetensors': makeModelBytes(taskAv1), 'config.json': config } } },
    { id: 'test-org/task-b', revisions: { main: { ...shardedFiles(taskB, 2), 'config.json': config } } },
    { id: 'test-org/gated-task', token, revisions: { main: { 'model.safetensors': makeModelBytes(gated) } } },
    {
      id: 'test-org/pt-only',
      revisions: { main: { 'pytorch_model.bin': pt, 'config.json': config }, 'refs/pr/2': { 'pytorch_model.bin': pt, 'model.safetensors': makeModelBytes(taskA), 'config.json': config } },
      discussions: [
        { num: 3, title: 'Adding `safetensors` variant of this model', author: 'someone-else', status: 'open', isPullRequest: true },
        { num: 2, title: 'Adding `safetensors` variant of this model', author: 'SFconvertbot', status: 'open', isPullRequest: true },
        { num: 1, title: 'Great model', author: 'someone', status: 'open', isPullRequest: false },
      ],
    },
    { id: 'test-org/tiny-data', type: 'dataset', revisions: { main: { 'data/test-00000-of-00001.parquet': makeModelBytes(base), 'README.md': new TextEncoder().encode('# tiny data\n') } } },
    { id: 'test-org/no-weights', revisions: { main: { 'pytorch_model.bin': pt } }, discussions: [{ num: 1, title: 'Adding `safetensors` variant of this model', author: 'SFconvertbot', status: 'closed', isPullRequest: true }] },
  ];
  return { repos, base, taskA, taskB, taskAv1, gated, token };
}

const CLI_HUB_ENV = ['HF_ENDPOINT', 'MERGE_PLAYGROUND_CACHE', 'HF_TOKEN'] as const;

/**
 * Points CLI runs at a local Hub (runCli's children inherit this process's environment): HF_ENDPOINT = `url`, the
 * download cache in `cacheDir`, no token. Returns a function that puts the environment back.
 */
export function cliHubEnv(url: string, cacheDir: string): () => void {
  const saved = Object.fromEntries(CLI_HUB_ENV.map((k) => [k, process.env[k]]));
  process.env.HF_ENDPOINT = url;
  process.env.MERGE_PLAYGROUND_CACHE = cacheDir;
  delete process.env.HF_TOKEN;
  return () => {
    for (const k of CLI_HUB_ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  };
}
