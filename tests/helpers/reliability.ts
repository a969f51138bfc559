/**
 * Reliability record: the fuzz, hostile-input, GPU-fault, long-use, network, no-data-lost and CSP tests each report
 * what they tried (a category, a case name, how many inputs) into tests/.out/reliability/<test file>.json;
 * tools/reliability-report.mjs turns those files into docs/reliability.md, and tests/unit/reliabilityDoc.test.ts fails
 * when the doc misses what the tests ran.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { expect, it } from 'vitest';

/**
 * Every category the reliability tests record, in the order the doc lists them (add new categories here: the report
 * tool reads this list, one `id: 'Title',` per line).
 */
export const CATEGORIES = {
  'fuzz-safetensors': 'Fuzzing: safetensors reader',
  'fuzz-config': 'Fuzzing: merge config and coefficient settings',
  'fuzz-share-link': 'Fuzzing: share links, experiment files and mergekit YAML',
  'fuzz-inputs': 'Fuzzing: evaluation data (parquet shards, PNG and JPEG images)',
  'hostile-safetensors': 'Hostile inputs: safetensors files',
  'hostile-config': 'Hostile inputs: merge configs',
  'hostile-link': 'Hostile inputs: share links and mergekit YAML',
  'hostile-text': 'Hostile inputs: HTML and script in names',
  'non-finite': 'Non-finite weights',
  'device-loss': 'GPU faults: device lost mid-work',
  'out-of-memory': 'GPU faults: out of memory',
  'long-use': 'Long use: repeated updates and cancellation',
  'network-faults': 'Network faults (local Hub test server)',
  'no-data-lost': 'No data lost',
  csp: 'Content-Security-Policy',
} as const;

/** A category id. */
export type Category = keyof typeof CATEGORIES;

/** One recorded case: `runs` inputs tried (1 for a single named input), and how it ended. */
export interface ReliabilityCase {
  category: Category;
  title: string;
  rank: number;
  name: string;
  runs: number;
  /** What the inputs did, e.g. "612 accepted, 388 rejected" (empty for a single input). */
  detail: string;
  result: 'passed' | 'failed';
}

/** What a reliability case's body returns: the number of inputs tried (undefined = 1), or that and a detail. */
export type CaseOutcome = number | void | { runs: number; detail: string };

/** Folder of the per-test-file records. */
export const RECORD_DIR = join(process.cwd(), 'tests', '.out', 'reliability');

// One list per test file: vitest isolates modules per file, so this holds the cases of the file being run.
const cases: ReliabilityCase[] = [];

/** Adds a case to this test file's record and rewrites the record (atomically: the doc test may read it meanwhile). */
export function recordCase(category: Category, name: string, outcome: CaseOutcome, result: ReliabilityCase['result']): void {
  const rank = Object.keys(CATEGORIES).indexOf(category);
  const existing = cases.findIndex((c) => c.category === category && c.name === name);
  const { runs, detail } = typeof outcome === 'object' ? outcome : { runs: outcome ?? 1, detail: '' };
  const entry: ReliabilityCase = { category, title: CATEGORIES[category], rank, name, runs, detail, result };
  if (existing >= 0) cases[existing] = entry;
  else cases.push(entry);
  const testPath = expect.getState().testPath ?? 'unknown';
  const source = relative(process.cwd(), testPath);
  mkdirSync(RECORD_DIR, { recursive: true });
  const file = join(RECORD_DIR, `${basename(testPath)}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ source, cases }, null, 2)}\n`);
  renameSync(tmp, file);
}

/**
 * A test that counts as a reliability case: `body` returns how many inputs it tried (see CaseOutcome). The case is
 * recorded as passed or failed; a failure still fails the test.
 */
export function reliabilityCase(category: Category, name: string, body: () => Promise<CaseOutcome> | CaseOutcome, timeout?: number): void {
  it(
    name,
    async () => {
      let outcome: CaseOutcome;
      try {
        outcome = await body();
      } catch (e) {
        recordCase(category, name, 0, 'failed');
        throw e;
      }
      recordCase(category, name, outcome, 'passed');
    },
    timeout,
  );
}
