/**
 * docs/reliability.md cannot go stale silently: it must have a section for every category the reliability tests can
 * record, and list every case a run recorded (tests/.out/reliability/) with the same number of inputs. If this fails
 * after changing a reliability test, regenerate the doc (commands at its top).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATEGORIES, RECORD_DIR, type ReliabilityCase } from '../helpers/reliability';

const docPath = join(process.cwd(), 'docs', 'reliability.md');
const doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Every case recorded so far; a record being rewritten by a running test is read whole (it is renamed into place). */
function recorded(): ReliabilityCase[] {
  if (!existsSync(RECORD_DIR)) return [];
  return readdirSync(RECORD_DIR)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => (JSON.parse(readFileSync(join(RECORD_DIR, f), 'utf8')) as { cases: ReliabilityCase[] }).cases);
}

describe('docs/reliability.md', () => {
  it('exists and explains how it is made', () => {
    expect(doc).toContain('tools/reliability-report.mjs');
    expect(doc).toContain('## Summary');
  });

  it('has a section and a summary row for every category the tests record', () => {
    for (const title of Object.values(CATEGORIES)) {
      expect(doc, title).toContain(`\n## ${title}\n`);
      expect(doc, title).toMatch(new RegExp(`\\n\\| ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\| \\d+ \\| \\d+ \\| all passed \\|`));
    }
  });

  it('lists every recorded case with its number of inputs', () => {
    const missing = recorded()
      .filter((c) => !doc.includes(`\n| ${cell(c.name)} | ${c.runs} |`))
      .map((c) => `${c.title}: ${c.name} (${c.runs} inputs)`);
    expect(missing, 'regenerate docs/reliability.md: node tools/reliability-report.mjs').toEqual([]);
  });

  it('shows the soak figures: GPU bytes back where they started, the heap before and after', () => {
    const rows = doc.split('\n').filter((line) => line.startsWith('| ') && line.includes('consecutive updates'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/\| GPU bytes held (\d+) before, \1 after; JS heap [\d.]+ MB before, [\d.]+ MB after \(bound \+\d+ MB\); \d+ cancelled; /);
  });
});
