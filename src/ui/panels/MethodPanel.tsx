/** Method picker and the chosen method's parameters; validation errors are shown inline as text. */
import { setMethod, setOutputDtype, setParam } from '../../app/actions';
import { resolveParams } from '../../engine/methods/params';
import { getMethod, METHODS } from '../../engine/methods/registry';
import { useAppStore } from '../hooks/useAppStore';
import { ParamControl } from './ParamControl';
import { LayerCurveEditor } from './LayerCurveEditor';
import { countLayers } from '../../engine/methods/scaling';
import { filtersFor } from '../charts/layerCurve';
import { useMemo } from 'react';

export function MethodPanel() {
  const methodId = useAppStore((s) => s.method);
  const params = useAppStore((s) => s.params);
  const outputDtype = useAppStore((s) => s.outputDtype);
  const tensors = useAppStore((s) => s.baseTensors);
  const models = useAppStore((s) => s.models.filter((m) => m.enabled).length);
  const layers = useMemo(() => countLayers(tensors), [tensors]);
  const filters = useMemo(() => filtersFor(tensors), [tensors]);
  const method = getMethod(methodId);
  let problem: string | null = null;
  try {
    resolveParams(method, params);
  } catch (e) {
    problem = (e as Error).message;
  }
  return (
    <section className="panel" aria-labelledby="method-h">
      <h2 id="method-h">Method</h2>
      <select aria-label="merging method" data-testid="method-select" value={methodId} onChange={(e) => setMethod(e.target.value)}>
        {METHODS.map((m) => (
          <option key={m.id} value={m.id}>
            {m.label}
          </option>
        ))}
      </select>
      <p className="summary">{method.summary}</p>
      <p className="source">{method.source}</p>
      {method.params.map((p) => (
        <div key={p.name}>
          <ParamControl spec={p} value={params[p.name] ?? p.default} onChange={(v) => setParam(p.name, v)} models={models} />
          {p.kind === 'coefficient' && layers > 1 && (
            <details className="curve" open={params[p.name] !== undefined && typeof params[p.name] !== 'number'}>
              <summary>per-layer curve of {p.name}</summary>
              <LayerCurveEditor
                layers={layers}
                value={params[p.name] ?? p.default}
                onChange={(v) => setParam(p.name, v)}
                filters={filters}
                name={p.name}
                {...(typeof p.default === 'number' ? { fallback: p.default } : {})}
                range={[p.min, p.max]}
              />
            </details>
          )}
        </div>
      ))}
      <div className="param">
        <label htmlFor="output-dtype" className="param-label">
          output dtype
        </label>
        <select id="output-dtype" value={outputDtype} onChange={(e) => setOutputDtype(e.target.value as typeof outputDtype)}>
          <option value="base">same as base</option>
          <option value="F32">F32</option>
          <option value="F16">F16</option>
          <option value="BF16">BF16</option>
        </select>
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
    </section>
  );
}
