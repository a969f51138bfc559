/** The continual methods' order control: a select for given / shuffled / a typed list of model indices. */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { expect, it } from 'vitest';
import { getMethod } from '../../src/engine/methods/registry';
import { orderListFor, ParamControl, parseOrderList } from '../../src/ui/panels/ParamControl';

const spec = getMethod('opcm').params.find((p) => p.name === 'order')!;
const html = (value: unknown, models?: number) => renderToStaticMarkup(createElement(ParamControl, { spec, value, onChange: () => {}, ...(models === undefined ? {} : { models }) }));

it('shows the order as a choice, and a typed list only for a list of indices', () => {
  expect(html('given')).toMatch(/<option value="given" selected="">as listed/);
  expect(html('given')).not.toContain('model indices from 0');
  expect(html('shuffle')).toMatch(/<option value="shuffle" selected="">shuffled/);
  const list = html([2, 0, 1]);
  expect(list).toMatch(/<option value="list" selected="">/);
  expect(list).toContain('value="2, 0, 1"');
  // No JSON quotes anywhere (the text box used to show "given").
  expect(html('given')).not.toContain('&quot;given&quot;');
});

it('reads a typed list of indices from 0, and nothing else', () => {
  expect(parseOrderList('2, 0, 1')).toEqual([2, 0, 1]);
  expect(parseOrderList(' 3 1,0  2 ')).toEqual([3, 1, 0, 2]);
  for (const bad of ['', ' , ', '1, -2', '1.5', 'a, b', '[1, 2]']) expect(parseOrderList(bad), bad).toBeNull();
});

it('sends a typed list only once it is a whole order of the switched-on models', () => {
  // Typing "1, 0, 2" for 3 models passes through "1" and "1, 0": neither starts a merge.
  expect(orderListFor('1', 3)).toBeNull();
  expect(orderListFor('1, 0', 3)).toBeNull();
  expect(orderListFor('1, 0, 2', 3)).toEqual([1, 0, 2]);
  for (const bad of ['1, 1, 0', '0, 1, 3', '0, 1, 2, 3', 'x']) expect(orderListFor(bad, 3), bad).toBeNull();
  // Without a model count, any list that parses.
  expect(orderListFor('1', undefined)).toEqual([1]);
  expect(orderListFor('1', 0)).toEqual([1]);
  // A list that does not fit the models says what it needs.
  expect(html([1], 3)).toContain('each of models 0 to 2 once, e.g. 2, 1, 0');
  expect(html([1], 3)).toContain('json-input invalid');
  expect(html([2, 0, 1], 3)).not.toContain('each of models');
});
