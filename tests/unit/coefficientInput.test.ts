/** The box that edits an anisotropic coefficient setting as JSON: only a setting the engine accepts is sent. */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { expect, it } from 'vitest';
import { getMethod } from '../../src/engine/methods/registry';
import { jsonParamValue, ParamControl } from '../../src/ui/panels/ParamControl';

const lambda = getMethod('task_arithmetic').params.find((p) => p.name === 'lambda')!;
const html = (value: unknown) => renderToStaticMarkup(createElement(ParamControl, { spec: lambda, value, onChange: () => {} }));

it('edits a setting that is not one number as JSON, with a way back to the default', () => {
  const out = html([0.1, 0.5]);
  expect(out).toContain('class="json-input"');
  expect(out).toContain('value="[0.1,0.5]"');
  expect(out).toContain(`reset to ${lambda.default}`);
  expect(out).not.toContain('param-error');
  // A plain number is a slider and a number box instead.
  expect(html(0.3)).toContain('type="range"');
});

it('sends every accepted form of a coefficient setting, as the engine reads it', () => {
  const forms: [string, unknown][] = [
    ['[0.1, 0.5]', [0.1, 0.5]],
    ['[{"filter": "mlp", "value": 0.5}, {"value": 0.3}]', [{ filter: 'mlp', value: 0.5 }, { value: 0.3 }]],
    ['{"per_task": [0.2, [0.1, 0.4]]}', { per_task: [0.2, [0.1, 0.4]] }],
    ['{"table": {"a.weight": [0.1, 0.2]}, "default": 0.3}', { table: { 'a.weight': [0.1, 0.2] }, default: 0.3 }],
    ['0.25', 0.25],
  ];
  for (const [text, value] of forms) {
    const read = jsonParamValue(lambda, text);
    expect('value' in read, text).toBe(true);
    // What was typed, key order included: the box keeps the user's text (a reordered copy would replace it).
    expect(JSON.stringify((read as { value: unknown }).value), text).toBe(JSON.stringify(value));
  }
});

it('holds back what is not a setting yet, and says why, naming the field', () => {
  // What typing "[0.1, 0.5]" passes through: none of it may start a merge.
  for (const partial of ['[', '[0.1', '[0.1,', '[0.1, 0.']) expect(jsonParamValue(lambda, partial), partial).toEqual({ error: 'not JSON yet' });
  const refused: [string, RegExp][] = [
    ['[]', /params\.lambda: an empty list/],
    ['"abc"', /params\.lambda/],
    ['[{"filter": "mlp"}]', /params\.lambda\[0\]\.value: missing/],
    ['[{"filter": 1, "value": 0.3}]', /params\.lambda\[0\]\.filter: must be a string/],
    ['{"per_task": []}', /params\.lambda\.per_task: must be a non-empty list/],
    ['{"table": {"a.weight": ["x"]}}', /params\.lambda\.table\["a\.weight"\]/],
    ['[0.1, null]', /params\.lambda/],
  ];
  for (const [text, why] of refused) {
    const read = jsonParamValue(lambda, text);
    expect('error' in read, text).toBe(true);
    expect((read as { error: string }).error, text).toMatch(why);
  }
});
