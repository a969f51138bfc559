/** The Accuracy tab: per-task accuracy of the merged model (on the suite), and per-tensor norms of the merge. */
import { setNormalized } from '../../app/actions';
import { mergeKey } from '../../app/mergeActions';
import { AccuracyChart } from '../charts/AccuracyChart';
import { NormsChart } from '../charts/NormsChart';
import { useAppStore } from '../hooks/useAppStore';

export function AccuracyView() {
  const suite = useAppStore((s) => s.suite);
  const report = useAppStore((s) => s.report);
  const normalized = useAppStore((s) => s.view.normalized);
  const models = useAppStore((s) => s.models);
  const stale = useAppStore((s) => !!s.suite?.mergedFor && s.suite.mergedFor !== mergeKey(s));
  if (!suite && !report) return <p className="placeholder">Merge to see per-tensor norms of every task vector and of the merged one.</p>;
  return (
    <div className="view">
      {suite && <AccuracyChart suite={suite} normalized={normalized} onNormalized={setNormalized} stale={stale} />}
      {report && <NormsChart report={report} names={report.models.length === models.filter((m) => m.enabled).length ? models.filter((m) => m.enabled).map((m) => m.name) : report.models} />}
    </div>
  );
}
