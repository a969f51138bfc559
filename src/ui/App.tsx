/** The page: models and method on the left, results on the right. */
import { useAppStore } from './hooks/useAppStore';
import { MethodPanel } from './panels/MethodPanel';
import { ModelsPanel } from './panels/ModelsPanel';
import { RunPanel } from './panels/RunPanel';
import { AccuracyChart } from './charts/AccuracyChart';
import { ContinualChart } from './charts/ContinualChart';
import { NormsChart } from './charts/NormsChart';

function GpuBanner() {
  const gpu = useAppStore((s) => s.gpu);
  if (gpu.state === 'checking') return <p className="banner">Starting WebGPU…</p>;
  if (gpu.state === 'unavailable') {
    return (
      <p className="banner error" role="alert" data-testid="gpu-unavailable">
        {gpu.message}
      </p>
    );
  }
  return (
    <p className="banner ok" data-testid="gpu-ready">
      GPU: {gpu.adapter}
      {gpu.software ? ' (software renderer: correct but slow)' : ''}
    </p>
  );
}

export function App() {
  const report = useAppStore((s) => s.report);
  const continual = useAppStore((s) => s.continual);
  const suite = useAppStore((s) => s.suite);
  return (
    <div className="app">
      <header>
        <h1>Merge Playground</h1>
        <p className="tagline">Merge fine-tuned models on your own GPU and see what the merge does.</p>
        <GpuBanner />
      </header>
      <main>
        <aside>
          <ModelsPanel />
          <MethodPanel />
          <RunPanel />
        </aside>
        <section className="results" aria-label="results">
          {suite && <AccuracyChart suite={suite} />}
          {report && <NormsChart report={report} />}
          {continual && <ContinualChart report={continual} />}
          {!report && !continual && !suite && <p className="placeholder">Merge to see per-tensor norms of every task vector and of the merged one.</p>}
        </section>
      </main>
    </div>
  );
}
