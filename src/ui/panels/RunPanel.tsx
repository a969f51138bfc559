/** The merge button, progress, errors and the download of the merged file. */
import { cancelMerge, merge } from '../../app/actions';
import { formatBytes } from '../format';
import { useAppStore } from '../hooks/useAppStore';
import { Progress } from '../Progress';

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
        <Progress progress={run.progress} message={run.message} startedAt={run.startedAt ?? null} label="merge progress" testId="merge-progress" />
      )}
      {run.state === 'error' && (
        <p className="error" role="alert">
          {run.message}
        </p>
      )}
      {run.state !== 'error' && run.state !== 'merging' && run.message && <p className="hint">{run.message}</p>}
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
