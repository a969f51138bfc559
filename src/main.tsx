/** Browser entry: mounts the page and starts WebGPU. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { initGpu, loadDemo } from './app/actions';
import { App } from './ui/App';
import { ErrorBoundary } from './ui/ErrorBoundary';
import './ui/styles.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ErrorBoundary>
      <App />
    </ErrorBoundary>
  </StrictMode>,
);
// Open on the embedded demo suite: results within seconds, no set-up, no network beyond the page's own server.
void initGpu().then(() => loadDemo());
