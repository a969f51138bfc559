/** Models from the Hugging Face Hub: id, optional tensor prefix, endpoint and token, with progress and cancel per model. */
import { useState } from 'react';
import { useStore } from 'zustand';
import { cancelHubJob, dismissHubJob, hubStore, openFromHub, setHubEndpoint, setHubPrefix, setHubToken, type HubJob } from '../../app/hubActions';
import { looksLikeHubId } from '../../platform/hubIds';
import { formatBytes } from '../format';

/** "12.3 MB of 27.0 MB · 5.20 MB/s · 3 s left". */
function progressText(job: HubJob): string {
  const p = job.progress;
  if (!p) return 'resolving…';
  const parts = [`${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)}`];
  if (p.bytesPerSecond > 0) parts.push(`${formatBytes(p.bytesPerSecond)}/s`);
  if (p.etaSeconds !== null && p.etaSeconds > 0) parts.push(p.etaSeconds < 90 ? `${Math.ceil(p.etaSeconds)} s left` : `${Math.round(p.etaSeconds / 60)} min left`);
  return parts.join(' · ');
}

function JobRow({ job }: { job: HubJob }) {
  const fraction = job.progress && job.progress.totalBytes > 0 ? job.progress.doneBytes / job.progress.totalBytes : 0;
  return (
    <li className="hub-job" data-testid="hub-job" data-state={job.state}>
      <span className="model-name" title={job.repo}>
        {job.repo} <span className="model-meta">({job.role === 'base' ? 'base' : 'fine-tuned'})</span>
      </span>
      {job.state === 'opening' && (
        <>
          <div className="progress" role="progressbar" aria-label={`download of ${job.repo}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(fraction * 100)}>
            <div className="bar" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
            <span className="progress-text" data-testid="hub-progress">
              {progressText(job)}
            </span>
          </div>
          <button onClick={() => cancelHubJob(job.id)} data-testid="hub-cancel">
            Cancel
          </button>
        </>
      )}
      {job.state === 'error' && (
        <p className="error" role="alert">
          {job.message}
        </p>
      )}
      {job.state === 'cancelled' && <p className="hint">{job.message}</p>}
      {job.state !== 'opening' && (
        <button className="link" onClick={() => dismissHubJob(job.id)}>
          dismiss
        </button>
      )}
    </li>
  );
}

export function HubPanel() {
  const endpoint = useStore(hubStore, (s) => s.endpoint);
  const prefix = useStore(hubStore, (s) => s.prefix);
  const hasToken = useStore(hubStore, (s) => s.hasToken);
  const rememberToken = useStore(hubStore, (s) => s.rememberToken);
  const jobs = useStore(hubStore, (s) => s.jobs);
  const [id, setId] = useState('');
  const [endpointText, setEndpointText] = useState(endpoint);
  const [endpointError, setEndpointError] = useState<string | null>(null);
  const [tokenText, setTokenText] = useState('');
  const [remember, setRemember] = useState(rememberToken);
  const valid = looksLikeHubId(id);
  const open = (role: HubJob['role']) => {
    if (valid) void openFromHub(id, role);
  };
  return (
    <section className="panel" aria-labelledby="hub-h" data-testid="hub-panel">
      <h2 id="hub-h">From the Hugging Face Hub</h2>
      <label className="hint" htmlFor="hub-id">
        Model id (org/name or org/name@revision)
      </label>
      <input id="hub-id" data-testid="hub-id" value={id} placeholder="tanganke/clip-vit-base-patch32_sun397" spellCheck={false} autoComplete="off" onChange={(e) => setId(e.target.value)} />
      <label className="hint" htmlFor="hub-prefix">
        Only tensors starting with (optional)
      </label>
      <input id="hub-prefix" data-testid="hub-prefix" value={prefix} placeholder="vision_model." spellCheck={false} onChange={(e) => setHubPrefix(e.target.value)} />
      <div className="run-buttons">
        <button data-testid="hub-add-base" disabled={!valid} onClick={() => open('base')}>
          Add as base
        </button>
        <button data-testid="hub-add-model" disabled={!valid} onClick={() => open('model')}>
          Add as fine-tuned
        </button>
      </div>
      {id && !valid && <p className="hint">Not a Hub id yet: org/name, optionally @branch, @tag or @commit.</p>}
      <ul className="models">
        {jobs.map((job) => (
          <JobRow key={job.id} job={job} />
        ))}
      </ul>
      <details>
        <summary className="hint">Endpoint and access token</summary>
        <label className="hint" htmlFor="hub-endpoint">
          Hub endpoint
        </label>
        <input
          id="hub-endpoint"
          data-testid="hub-endpoint"
          value={endpointText}
          spellCheck={false}
          onChange={(e) => setEndpointText(e.target.value)}
          onBlur={() => setEndpointError(setHubEndpoint(endpointText))}
        />
        {endpointError && (
          <p className="error" role="alert">
            {endpointError}
          </p>
        )}
        <label className="hint" htmlFor="hub-token">
          Access token for gated or private repos {hasToken ? '(set)' : ''}
        </label>
        <input id="hub-token" data-testid="hub-token" type="password" autoComplete="off" value={tokenText} placeholder={hasToken ? '••••••••' : 'hf_…'} onChange={(e) => setTokenText(e.target.value)} />
        <label className="hint">
          <input type="checkbox" data-testid="hub-remember" checked={remember} onChange={(e) => setRemember(e.target.checked)} /> remember for this tab
        </label>
        <div className="run-buttons">
          <button
            data-testid="hub-token-save"
            onClick={() => {
              setHubToken(tokenText, remember);
              setTokenText('');
            }}
          >
            Use token
          </button>
          {hasToken && (
            <button
              onClick={() => {
                setHubToken('', false);
                setRemember(false);
              }}
            >
              Forget token
            </button>
          )}
        </div>
        <p className="hint">The token is sent only to the endpoint, in an Authorization header; it never goes into links or exported files.</p>
      </details>
    </section>
  );
}
