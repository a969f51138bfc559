#!/usr/bin/env node
// Writes docs/reliability.md from the records the reliability tests leave in tests/.out/reliability/ (one JSON file per
// test file: category, case, inputs tried, outcome, result; see tests/helpers/reliability.ts). Run the tests first:
// the commands are in the doc's header. Exits 1 if there is no record or a recorded case failed.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const recordDir = join(root, 'tests', '.out', 'reliability');
const docPath = join(root, 'docs', 'reliability.md');

const files = existsSync(recordDir) ? readdirSync(recordDir).filter((f) => f.endsWith('.json')).sort() : [];
if (!files.length) {
  process.stderr.write(`reliability-report: no records in ${recordDir}: run the reliability tests first (see docs/reliability.md)\n`);
  process.exit(1);
}

// The categories and their order come from tests/helpers/reliability.ts (CATEGORIES, one `id: 'Title',` per line), not
// from the records: a record written before a category was added carries a stale rank.
const helper = readFileSync(join(root, 'tests', 'helpers', 'reliability.ts'), 'utf8');
const block = /export const CATEGORIES = \{([\s\S]*?)\} as const;/.exec(helper);
const known = new Map(
  [...(block?.[1] ?? '').matchAll(/^\s*'?([\w-]+)'?:\s*'((?:[^'\\]|\\.)*)',?\s*$/gm)].map((m, rank) => [m[1], { title: m[2].replace(/\\'/g, "'"), rank }]),
);
if (!known.size) {
  process.stderr.write('reliability-report: found no CATEGORIES in tests/helpers/reliability.ts\n');
  process.exit(1);
}

const cases = files.flatMap((f) => {
  const { source, cases: list } = JSON.parse(readFileSync(join(recordDir, f), 'utf8'));
  return list.map((c, order) => {
    const category = known.get(c.category);
    if (!category) {
      process.stderr.write(`reliability-report: ${source} records category '${c.category}', which CATEGORIES in tests/helpers/reliability.ts lacks\n`);
      process.exit(1);
    }
    return { ...c, ...category, source, order };
  });
});

// The commands that produce the records: the test files that wrote them, by vitest project (tests/<project>/...).
const runCommands = ['unit', 'gpu', 'e2e'].flatMap((project) => {
  const sources = [...new Set(cases.map((c) => c.source))].filter((s) => s.startsWith(`tests/${project}/`)).sort();
  return sources.length ? [`npx vitest run --project ${project} ${sources.join(' ')}`] : [];
});

/** Markdown table cell: pipes escaped, newlines flattened. */
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

const categories = [...new Map(cases.map((c) => [c.category, { id: c.category, title: c.title, rank: c.rank }])).values()].sort((a, b) => a.rank - b.rank);
const failed = cases.filter((c) => c.result !== 'passed');

const lines = [
  '# Reliability',
  '',
  'What the test suite tries against hostile and broken input, GPU faults and long use, and what came of it. **This file is generated**:',
  'the reliability tests record each case they run (its category, name, how many inputs it tried and what they did)',
  'into `tests/.out/reliability/<test file>.json` through `tests/helpers/reliability.ts`, and',
  '`node tools/reliability-report.mjs` turns those records into this page. `tests/unit/reliabilityDoc.test.ts` fails',
  'when this page lacks a category the tests can record, or a case (with its input count) that a run recorded, so it',
  'cannot silently go stale. To regenerate it:',
  '',
  '```sh',
  ...runCommands,
  'node tools/reliability-report.mjs',
  '```',
  '',
  'Fuzz cases are fast-check properties with a fixed seed (`FUZZ_SEED` in `tests/helpers/fuzz.ts`; set the variable to',
  'explore other inputs), so the counts below are the same on every run. An input passes when it is accepted and then',
  'passes every check of its target, or is rejected with the one error class the parser promises (FormatError for',
  'files, ConfigError for configs) naming the file or field at fault; any other exception, or an input taking over 2 s,',
  'fails the case.',
  '',
  'GPU faults are real ones on the test device (SwiftShader in CI): a device loss is `device.destroy()` in the middle of',
  'the work, and out of memory is a context created with `maxAllocatedBytes`, whose allocations beyond it fail as an',
  'exhausted device\'s do. Recovery (src/engine/gpu/retry.ts) reruns the work from its sources: once on a new device',
  'after a loss, with smaller chunks after an allocation failure. Long-use cases count GPU bytes with the context\'s',
  'own accounting of every buffer the engine makes, and the JS heap after garbage collection; their figures are in',
  'the Outcome column.',
  '',
  '## Summary',
  '',
  '| Category | Cases | Inputs tried | Result |',
  '| --- | ---: | ---: | --- |',
  ...categories.map((cat) => {
    const mine = cases.filter((c) => c.category === cat.id);
    const bad = mine.filter((c) => c.result !== 'passed').length;
    return `| ${cell(cat.title)} | ${mine.length} | ${sum(mine.map((c) => c.runs))} | ${bad ? `${bad} failed` : 'all passed'} |`;
  }),
  '',
];
for (const cat of categories) {
  const mine = cases.filter((c) => c.category === cat.id).sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : a.order - b.order));
  const sources = [...new Set(mine.map((c) => c.source))];
  lines.push(`## ${cat.title}`, '', `From ${sources.map((s) => `\`${s}\``).join(', ')}.`, '', '| Case | Inputs | Outcome | Result |', '| --- | ---: | --- | --- |');
  for (const c of mine) lines.push(`| ${cell(c.name)} | ${c.runs} | ${cell(c.detail || '')} | ${c.result} |`);
  lines.push('');
}

mkdirSync(dirname(docPath), { recursive: true });
writeFileSync(docPath, lines.join('\n'));
process.stdout.write(`reliability-report: wrote ${docPath}: ${categories.length} categories, ${cases.length} cases, ${sum(cases.map((c) => c.runs))} inputs\n`);
if (failed.length) {
  process.stderr.write(`reliability-report: ${failed.length} case(s) failed: ${failed.map((c) => c.name).join('; ')}\n`);
  process.exit(1);
}
