/** Browser entry: mounts the page and starts WebGPU. */
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { initGpu } from './app/actions';
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
void initGpu();
