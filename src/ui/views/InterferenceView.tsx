/** The Interference tab: how the task vectors (and what the method keeps of them) relate, measured during the merge. */
import { CosineHeatmap } from '../charts/CosineHeatmap';
import { LayerNormsChart } from '../charts/LayerNormsChart';
import { MaskOverlapChart } from '../charts/MaskOverlapChart';
import { SignConflictChart } from '../charts/SignConflictChart';
import { useAppStore } from '../hooks/useAppStore';

export function InterferenceView() {
  const report = useAppStore((s) => s.report);
  const continual = useAppStore((s) => s.continual);
  const models = useAppStore((s) => s.models);
  const running = useAppStore((s) => s.run.state === 'merging');
  const interference = report?.interference;
  if (!interference) {
    return (
      <p className="placeholder">
        {continual
          ? 'Interference metrics are measured by the batch methods; continual methods show their internals in the OPCM tab.'
          : running
            ? 'Measuring interference during the merge…'
            : 'Merge to measure interference.'}
      </p>
    );
  }
  // Report columns follow the merged models: the switched-on ones, in order.
  const tasks = models.filter((m) => m.enabled).map((m) => m.name);
  return (
    <div className="view chart-grid">
      <CosineHeatmap interference={interference} tasks={tasks} />
      <SignConflictChart interference={interference} method={report.config.method} />
      <MaskOverlapChart interference={interference} tasks={tasks} method={report.config.method} />
      <LayerNormsChart interference={interference} tasks={tasks} />
    </div>
  );
}
