/** Writing a run's results: <date>-<adapter>.json and .md, plus latest.md, in one folder. */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { renderMarkdown } from './markdown';
import { RESULTS_FORMAT, type BenchResults } from './results';

/** A file-name label of an adapter: "swiftshader", or its description in lowercase words joined by dashes. */
export function adapterSlug(adapter: string): string {
  if (/swiftshader/i.test(adapter)) return 'swiftshader';
  return adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48) || 'adapter';
}

/** The profile an adapter runs by default: `swiftshader` on a software adapter, `gpu` otherwise. */
export function defaultProfile(isSoftware: boolean): string {
  return isSoftware ? 'swiftshader' : 'gpu';
}

/**
 * Writes <date>-<adapter>.json and .md under `dir` (with -<profile> appended for a profile other than the adapter's
 * default) and, for the default profile, latest.md; returns the paths written.
 */
export async function writeResults(dir: string, r: BenchResults): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const usual = r.profile === defaultProfile(r.isSoftware);
  const stem = join(dir, `${r.date.slice(0, 10)}-${adapterSlug(r.adapter)}${usual ? '' : `-${r.profile}`}`);
  const md = renderMarkdown(r);
  const files: [string, string][] = [
    [`${stem}.json`, `${JSON.stringify(r, null, 1)}\n`],
    [`${stem}.md`, `${md}\n`],
  ];
  if (usual) files.push([join(dir, 'latest.md'), `${md}\n`]);
  for (const [path, text] of files) await writeAtomically(path, text);
  return files.map(([path]) => path);
}

/** Writes `text` to a temporary file beside `path`, then renames it: a run killed mid-write leaves the old file whole. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Rewrites the summary of an existing results file: <stem>.md beside it, and latest.md for a default-profile run. */
export async function renderResults(jsonPath: string): Promise<string[]> {
  const r = JSON.parse(await readFile(jsonPath, 'utf8')) as BenchResults;
  if (r.format !== RESULTS_FORMAT) throw new Error(`${jsonPath}: not a benchmark results file (format ${JSON.stringify(r.format)}, expected ${RESULTS_FORMAT})`);
  const md = `${renderMarkdown(r)}\n`;
  const paths = [join(dirname(jsonPath), `${basename(jsonPath, '.json')}.md`)];
  if (r.profile === defaultProfile(r.isSoftware)) paths.push(join(dirname(jsonPath), 'latest.md'));
  for (const path of paths) await writeAtomically(path, md);
  return paths;
}
