/** docs/methods.md is generated from the method specs; this keeps the committed file in step with the code. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { methodsMarkdown } from '../../src/engine/methods/docs';
import { METHODS } from '../../src/engine/methods/registry';

it('docs/methods.md is what `merge-playground methods --markdown` prints (regenerate it with that command)', () => {
  const committed = readFileSync('docs/methods.md', 'utf8');
  expect(committed).toBe(methodsMarkdown(METHODS));
  for (const m of METHODS) expect(committed).toContain(`(\`${m.id}\`)`);
});
