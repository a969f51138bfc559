/**
 * The Sweep tab: average accuracy over one parameter's range (the method's main coefficient, or another real-valued
 * parameter chosen here), computed when the tab opens or the experiment changes.
 */
import { useEffect, useId } from 'react';
import { setSweepParam } from '../../app/actions';
import { rangeText } from '../../engine/methods/params';
import { cancelSweep, runSweep, sweepableParams, sweepKey, sweptParam } from '../../app/sweepActions';
import { SweepChart } from '../charts/SweepChart';
import { useAppStore } from '../hooks/useAppStore';
import { JobStatus } from './JobStatus';

const mean = (acc: Record<string, number> | null) => {
  const xs = acc ? Object.values(acc) : [];
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
};

export function SweepView() {
  const method = useAppStore((s) => s.method);
  const sweep = useAppStore((s) => s.sweep);
  const job = useAppStore((s) => s.jobs.sweep);
  const suite = useAppStore((s) => s.suite);
  const params = useAppStore((s) => s.params);
  const chosen = useAppStore((s) => s.view.sweep);
  const param = sweptParam(method, chosen);
  const choices = sweepableParams(method);
  const selectId = useId();
  const key = useAppStore((s) => (param ? sweepKey(s, param.name) : null));
  const ready = suite?.state === 'ready';
  useEffect(() => {
    // Recompute once the controls rest: a sweep is many merges, so never per slider event.
    if (!ready || !key) return;
    const timer = setTimeout(() => void runSweep(), 800);
    return () => clearTimeout(timer);
  }, [key, ready]);
  if (!suite) return <p className="placeholder">The sweep needs the demo suite: it scores every point.</p>;
  if (!param) return <p className="placeholder">{method} has no coefficient to sweep.</p>;
  if (method === 'tall_masks') return <p className="placeholder">TALL masks make one model per task: there is no single merged model to sweep.</p>;
  const current = typeof params[param.name] === 'number' ? (params[param.name] as number) : typeof param.default === 'number' ? param.default : NaN;
  const stale = sweep && sweep.key !== key;
  return (
    <div className="view">
      {choices.length > 1 && (
        <p className="sweep-choice">
          <label htmlFor={selectId}>sweep</label>{' '}
          <select id={selectId} data-testid="sweep-param" value={param.name} onChange={(e) => setSweepParam(e.target.value)}>
            {choices.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name} {c.kind === 'number' ? rangeText(c) : `${c.min} to ${c.max}`}
              </option>
            ))}
          </select>{' '}
          <span className="hint">{param.description}</span>
        </p>
      )}
      {sweep && sweep.param === param.name && !stale ? (
        <SweepChart
          param={param.name}
          unit={param.kind === 'coefficient' ? 'coefficient, unitless' : 'unitless'}
          points={sweep.points}
          values={sweep.values}
          current={current}
          tasks={suite.tasks}
          {...(mean(suite.base) !== undefined ? { baseAverage: mean(suite.base)! } : {})}
          {...(mean(suite.individual) !== undefined ? { individualAverage: mean(suite.individual)! } : {})}
        />
      ) : (
        <p className="placeholder">Sweeping {param.name} once the controls rest…</p>
      )}
      <p className="hint">
        {SWEEP_NOTE} Each point merges all switched-on models with {param.name} set to that value (the other parameters as chosen) and scores {sweep?.samples ?? '…'} images per task.
      </p>
      <JobStatus job={job} onCancel={cancelSweep} label="sweep progress" />
      <button onClick={() => void runSweep(true)}>Recompute</button>
    </div>
  );
}

const SWEEP_NOTE = 'A per-layer or per-task setting is replaced by one number at each point.';
