/** One method parameter as a control: slider + number for numbers, checkbox, select; a text box for anisotropic settings. */
import { useState } from 'react';
import { resolveOrder } from '../../engine/methods/order';
import { validateParam, type ParamSpec } from '../../engine/methods/params';

/** `models`: how many models the method merges (switched on), against which a typed order list is checked. */
export function ParamControl({ spec, value, onChange, models }: { spec: ParamSpec; value: unknown; onChange: (v: unknown) => void; models?: number }) {
  const id = `param-${spec.name}`;
  const label = (
    <label htmlFor={id} className="param-label" title={spec.description}>
      {spec.name}
    </label>
  );
  switch (spec.kind) {
    case 'boolean':
      return (
        <div className="param">
          {label}
          <input id={id} type="checkbox" checked={value as boolean} onChange={(e) => onChange(e.target.checked)} />
          <p className="param-help">{spec.description}</p>
        </div>
      );
    case 'enum':
      return (
        <div className="param">
          {label}
          <select id={id} value={value as string} onChange={(e) => onChange(e.target.value)}>
            {spec.values.map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
          <p className="param-help">{spec.description}</p>
        </div>
      );
    case 'order':
      return (
        <div className="param">
          {label}
          <OrderInput id={id} value={value} onChange={onChange} models={models} />
          <p className="param-help">{spec.description}</p>
        </div>
      );
    default: {
      if (typeof value !== 'number') {
        // An anisotropic setting (per-layer list, rules, table) or "auto": edited as JSON.
        return (
          <div className="param">
            {label}
            <JsonInput id={id} spec={spec} value={value} onChange={onChange} />
            <button className="link" onClick={() => onChange(spec.default)}>
              reset to {spec.default}
            </button>
            <p className="param-help">{spec.description}</p>
          </div>
        );
      }
      const step = spec.kind === 'integer' ? 1 : (spec.step ?? (spec.max - spec.min) / 100);
      return (
        <div className="param">
          {label}
          <input
            id={id}
            type="range"
            min={spec.min}
            max={spec.max}
            step={step}
            value={value}
            aria-valuetext={String(value)}
            onChange={(e) => onChange(Number(e.target.value))}
          />
          <input
            type="number"
            className="param-number"
            aria-label={`${spec.name} value`}
            min={spec.min}
            max={spec.max}
            step={step}
            value={value}
            onChange={(e) => e.target.value !== '' && onChange(Number(e.target.value))}
          />
          <p className="param-help">{spec.description}</p>
        </div>
      );
    }
  }
}

/**
 * The text of a box that edits `value`: what the user typed, until `value` changes to something that text does not
 * already say (a link, an opened experiment, a reset): then the value's own text. `says(text, value)` tells which.
 * `changed` is true in the render where `value` changed.
 */
function useValueText<T>(value: T, format: (v: T) => string, says: (text: string, v: T) => boolean): { text: string; setText: (text: string) => void; changed: boolean } {
  const [text, setText] = useState(() => format(value));
  const [synced, setSynced] = useState(value);
  const changed = synced !== value;
  if (changed) {
    // Adjusting state while rendering (React re-renders at once): no frame shows the stale text.
    setSynced(value);
    if (!says(text, value)) setText(format(value));
  }
  return { text, setText, changed };
}

const parsesTo = (text: string, v: unknown): boolean => {
  try {
    return JSON.stringify(JSON.parse(text)) === JSON.stringify(v);
  } catch {
    return false;
  }
};

/**
 * What a typed coefficient setting means for parameter `spec`: the value to send, or why it is not one yet (not JSON,
 * or JSON the engine's own check refuses, e.g. an empty list or a rule without a value).
 */
export function jsonParamValue(spec: ParamSpec, text: string): { value: unknown } | { error: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'not JSON yet' };
  }
  try {
    validateParam(spec, parsed);
    // The text as typed, not the checked copy (which may order a rule's keys differently): the box keeps its text.
    return { value: parsed };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function JsonInput({ id, spec, value, onChange }: { id: string; spec: ParamSpec; value: unknown; onChange: (v: unknown) => void }) {
  // Only a setting the engine accepts is sent: typing a list or a rule passes through texts that are not one, and
  // none of them should start a merge that fails. The box says what is wrong until the text is a setting again.
  const { text, setText, changed } = useValueText(value, (v) => JSON.stringify(v), parsesTo);
  const [error, setError] = useState<string | null>(null);
  // A value set from elsewhere (a reset, a link) replaces the text, and with it the complaint.
  if (changed && error) setError(null);
  return (
    <>
      <input
        id={id}
        className={`json-input${error ? ' invalid' : ''}`}
        value={text}
        spellCheck={false}
        aria-invalid={!!error}
        onChange={(e) => {
          setText(e.target.value);
          const read = jsonParamValue(spec, e.target.value);
          if ('value' in read) {
            setError(null);
            onChange(read.value);
          } else setError(read.error);
        }}
      />
      {error ? <span className="param-help param-error">{error}</span> : null}
    </>
  );
}

/** The list of an order as typed: indices from 0, separated by commas or spaces. */
export function parseOrderList(text: string): number[] | null {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  return parts.length > 0 && parts.every((x) => /^\d+$/.test(x)) ? parts.map(Number) : null;
}

/**
 * The typed list as an order of `models` models: each index 0..models-1 once. null while it is not one yet (typing
 * "1, 0, 2" passes through "1" and "1, 0"); any list that parses when the count is unknown (undefined or 0).
 */
export function orderListFor(text: string, models: number | undefined): number[] | null {
  const list = parseOrderList(text);
  if (!list || !models) return list;
  try {
    return resolveOrder(list, 0, models); // the engine's own check of an order
  } catch {
    return null;
  }
}

/**
 * A model order: the models' order on the page, shuffled (seeded by `seed`), or a list of model indices (from 0, in the
 * order of the switched-on models) typed as "2, 0, 1".
 */
function OrderInput({ id, value, onChange, models }: { id: string; value: unknown; onChange: (v: unknown) => void; models: number | undefined }) {
  // The list is sent once it is a whole order (each model once): until then the merge keeps the order it had, and the
  // box shows "list" (pending) over it with what is missing, so no merge starts on a half-typed list. A value set
  // from elsewhere ends that, and shows itself.
  const [pending, setPending] = useState(false);
  const { text, setText, changed } = useValueText(
    value,
    (v) => (Array.isArray(v) ? v.join(', ') : ''),
    (t, v) => !Array.isArray(v) || JSON.stringify(parseOrderList(t)) === JSON.stringify(v),
  );
  if (changed && pending) setPending(false);
  const mode = pending ? 'list' : Array.isArray(value) ? 'list' : value === 'shuffle' ? 'shuffle' : 'given';
  const bad = mode === 'list' && orderListFor(text, models) === null;
  return (
    <span className="order-input">
      <select
        id={id}
        value={mode}
        onChange={(e) => {
          const k = e.target.value;
          const list = k === 'list' ? orderListFor(text, models) : null;
          setPending(k === 'list' && !list);
          if (k !== 'list') onChange(k);
          else if (list) onChange(list);
        }}
      >
        <option value="given">as listed (drag to reorder)</option>
        <option value="shuffle">shuffled (seed)</option>
        <option value="list">model indices…</option>
      </select>
      {mode === 'list' && (
        <input
          aria-label="order: model indices from 0"
          className={`json-input${bad ? ' invalid' : ''}`}
          value={text}
          placeholder="e.g. 2, 0, 1"
          spellCheck={false}
          onChange={(e) => {
            setText(e.target.value);
            const list = orderListFor(e.target.value, models);
            if (list) {
              setPending(false);
              onChange(list);
            } else setPending(true);
          }}
        />
      )}
      {bad && models ? <span className="param-help">each of models 0 to {models - 1} once, e.g. {Array.from({ length: models }, (_, i) => models - 1 - i).join(', ')}</span> : null}
    </span>
  );
}
