/** Browser entry: mounts the page, reads the share link, starts WebGPU and opens the demo suite. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { DEMO_URL, initGpu, loadDemo, loadPreset } from './app/actions';
import { readLink, startUrlSync } from './app/urlSync';
import { App } from './ui/App';
import { ErrorBoundary } from './ui/ErrorBoundary';
import './ui/styles.css';
import './ui/charts/charts.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ErrorBoundary>
      <App />
    </ErrorBoundary>
  </StrictMode>,
);
// The link's settings first, so the first merge is already the shared experiment; then the demo suite (no set-up,
// no network beyond the page's own server); from then on every change of the experiment is written to the URL.
const { layout, presetId } = readLink(location.hash);
void initGpu()
  .then(() => (presetId ? loadPreset(presetId, layout) : loadDemo(DEMO_URL, layout)))
  .finally(startUrlSync);
