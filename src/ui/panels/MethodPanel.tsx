/** Method picker and the chosen method's parameters; validation errors are shown inline as text. */
import { setMethod, setOutputDtype, setParam } from '../../app/actions';
import { resolveParams } from '../../engine/methods/params';
import { getMethod, METHODS } from '../../engine/methods/registry';
import { useAppStore } from '../hooks/useAppStore';
import { ParamControl } from './ParamControl';

export function MethodPanel() {
  const methodId = useAppStore((s) => s.method);
  const params = useAppStore((s) => s.params);
  const outputDtype = useAppStore((s) => s.outputDtype);
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
        <ParamControl key={p.name} spec={p} value={params[p.name] ?? p.default} onChange={(v) => setParam(p.name, v)} />
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
