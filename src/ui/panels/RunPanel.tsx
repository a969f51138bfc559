/** The merge button, progress, errors and the download of the merged file. */
import { cancelMerge, merge } from '../../app/actions';
import { formatBytes } from '../format';
import { useAppStore } from '../hooks/useAppStore';

export function RunPanel() {
  const run = useAppStore((s) => s.run);
  const outputs = useAppStore((s) => s.outputs);
  const ready = useAppStore((s) => s.gpu.state === 'ready' && !!s.base && s.models.length > 0);
  const report = useAppStore((s) => s.report);
  return (
    <section className="panel run" aria-labelledby="run-h">
      <h2 id="run-h">Merge</h2>
      <div className="run-buttons">
        <button className="primary" data-testid="merge-button" disabled={!ready || run.state === 'merging'} onClick={() => void merge()}>
          Merge on GPU
        </button>
        {run.state === 'merging' && <button onClick={cancelMerge}>Cancel</button>}
      </div>
      {!ready && run.state !== 'merging' && <p className="hint">Choose a base and at least one fine-tuned model.</p>}
      {run.state === 'merging' && (
        <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(run.progress * 100)}>
          <div className="bar" style={{ width: `${(run.progress * 100).toFixed(1)}%` }} />
          <span className="progress-text">{(run.progress * 100).toFixed(0)}% {run.message}</span>
        </div>
      )}
      {run.state === 'error' && (
        <p className="error" role="alert">
          {run.message}
        </p>
      )}
      {run.state !== 'error' && run.message && <p className="hint">{run.message}</p>}
      {outputs.map((output, i) => (
        <p className="download" key={output.url}>
          <a href={output.url} download={output.name} data-testid={i === 0 ? 'download-link' : `download-link-${i}`}>
            Download {output.name}
          </a>{' '}
          ({formatBytes(output.bytes)})
        </p>
      ))}
      {report && outputs.length > 0 && <p className="hint">Merged in {(report.elapsedMs / 1000).toFixed(2)} s.</p>}
    </section>
  );
}
