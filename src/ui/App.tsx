/** The page: models, method, evaluation and sharing on the left; the results, in tabs, on the right. */
import { setTab } from '../app/actions';
import { useAppStore } from './hooks/useAppStore';
import { ChartTabs } from './charts/ChartTabs';
import { EvalPanel } from './panels/EvalPanel';
import { HubPanel } from './panels/HubPanel';
import { MethodPanel } from './panels/MethodPanel';
import { ModelsPanel } from './panels/ModelsPanel';
import { RunPanel } from './panels/RunPanel';
import { SharePanel } from './panels/SharePanel';
import { AccuracyView } from './views/AccuracyView';
import { ContinualView } from './views/ContinualView';
import { InterferenceView } from './views/InterferenceView';
import { OpcmView } from './views/OpcmView';
import { SweepView } from './views/SweepView';

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

function LinkBanner() {
  const linkError = useAppStore((s) => s.linkError);
  if (!linkError) return null;
  return (
    <p className="banner error" role="alert" data-testid="link-error">
      {linkError}
    </p>
  );
}

export function App() {
  const tab = useAppStore((s) => s.view.tab);
  const mergedFor = useAppStore((s) => s.suite?.mergedFor ?? undefined);
  const samples = useAppStore((s) => s.suite?.samples);
  return (
    <div className="app">
      <header>
        <h1>Merge Playground</h1>
        <p className="tagline">Merge fine-tuned models on your own GPU and see what the merge does to every task.</p>
        <GpuBanner />
        <LinkBanner />
      </header>
      <main>
        <aside>
          <ModelsPanel />
          <HubPanel />
          <MethodPanel />
          <RunPanel />
          <EvalPanel />
          <SharePanel />
        </aside>
        <section className="results" aria-label="results" data-testid="results" data-merged-for={mergedFor} data-merged-samples={samples}>
          <ChartTabs
            value={tab}
            onChange={setTab}
            panels={{
              accuracy: <AccuracyView />,
              sweep: tab === 'sweep' ? <SweepView /> : null,
              interference: <InterferenceView />,
              continual: <ContinualView />,
              opcm: <OpcmView />,
            }}
          />
        </section>
      </main>
    </div>
  );
}
