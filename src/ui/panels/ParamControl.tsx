/** One method parameter as a control: slider + number for numbers, checkbox, select; a text box for anisotropic settings. */
import { useState } from 'react';
import type { ParamSpec } from '../../engine/methods/params';

export function ParamControl({ spec, value, onChange }: { spec: ParamSpec; value: unknown; onChange: (v: unknown) => void }) {
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
          <JsonInput id={id} value={value} onChange={onChange} />
          <p className="param-help">{spec.description}</p>
        </div>
      );
    default: {
      if (typeof value !== 'number') {
        // An anisotropic setting (per-layer list, rules, table) or "auto": edited as JSON.
        return (
          <div className="param">
            {label}
            <JsonInput id={id} value={value} onChange={onChange} />
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

function JsonInput({ id, value, onChange }: { id: string; value: unknown; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(JSON.stringify(value));
  const [bad, setBad] = useState(false);
  return (
    <input
      id={id}
      className={`json-input${bad ? ' invalid' : ''}`}
      value={text}
      spellCheck={false}
      onChange={(e) => {
        setText(e.target.value);
        try {
          onChange(JSON.parse(e.target.value));
          setBad(false);
        } catch {
          setBad(true);
        }
      }}
    />
  );
}
