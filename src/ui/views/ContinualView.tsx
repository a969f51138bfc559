/** The Continual tab: OPCM and the continual baselines merged step by step over several seeded orders. */
import { CONTINUAL_ORDERS, cancelContinual, continualKey, runContinualComparison } from '../../app/continualActions';
import { ContinualAccuracyChart } from '../charts/ContinualAccuracyChart';
import { useAppStore } from '../hooks/useAppStore';
import { JobStatus } from './JobStatus';

const fmt = (x: number | null) => (x === null ? '–' : `${x.toFixed(1)}`);

export function ContinualView() {
  const runs = useAppStore((s) => s.continualRuns);
  const job = useAppStore((s) => s.jobs.continual);
  const suite = useAppStore((s) => s.suite);
  const key = useAppStore(continualKey);
  if (!suite) return <p className="placeholder">The continual comparison needs the demo suite: it scores every step.</p>;
  const stale = runs !== null && runs.key !== key;
  const tasks = (runs?.tasks ?? []).map((id) => ({ id, title: suite.tasks.find((t) => t.id === id)?.title ?? id }));
  return (
    <div className="view">
      <p className="hint">
        Each method merges the switched-on models one at a time in {CONTINUAL_ORDERS} seeded random orders; after every step the merged model is scored on the tasks merged so far ({runs?.samples ?? '…'} images per task). Backward transfer (BWT) = mean over tasks of
        (final accuracy − accuracy right after the task was merged).
      </p>
      <div className="run-buttons">
        <button className="primary" data-testid="run-continual" disabled={job.state === 'running'} onClick={() => void runContinualComparison(true)}>
          {runs ? 'Run again' : 'Run the continual comparison'}
        </button>
      </div>
      <JobStatus job={job} onCancel={cancelContinual} label="continual comparison progress" />
      {stale && <p className="hint">The models or settings changed since this comparison ran: run it again to update.</p>}
      {runs && runs.methods.length > 0 && (
        <>
          <ContinualAccuracyChart methods={runs.methods} tasks={tasks} />
          <table className="numbers" data-testid="continual-table">
            <caption>Final average accuracy and BWT per order (%, points)</caption>
            <thead>
              <tr>
                <th scope="col">method</th>
                {Array.from({ length: CONTINUAL_ORDERS }, (_, k) => (
                  <th scope="col" key={k}>
                    order {k + 1}: avg / BWT
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {runs.methods.map((m) => (
                <tr key={m.id}>
                  <th scope="row">{m.label}</th>
                  {m.orders.map((o, k) => (
                    <td key={k}>
                      {fmt(o.finalAverage)} / {fmt(o.bwt)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
