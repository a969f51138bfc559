/** Share and save: copy the link, download the experiment (JSON, CLI config, mergekit YAML), open a saved one. */
import { useEffect, useState } from 'react';
import { exportFile, importFile, type ExportKind } from '../../app/shareActions';
import { currentLink } from '../../app/urlSync';

interface Offered {
  url: string;
  name: string;
  warnings: string[];
}

export function SharePanel() {
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [offered, setOffered] = useState<Offered | null>(null);
  useEffect(() => () => (offered ? URL.revokeObjectURL(offered.url) : undefined), [offered]);
  const copy = async () => {
    setError(null);
    try {
      await navigator.clipboard.writeText(currentLink());
      setNote('Link copied: it reproduces this experiment.');
    } catch {
      // Clipboard access can be refused (permissions, insecure context): the address bar holds the same link.
      setNote('Copy the address from the address bar: it always holds this experiment.');
    }
  };
  const save = async (kind: ExportKind) => {
    setError(null);
    setNote(null);
    try {
      const f = await exportFile(kind);
      setOffered({ url: URL.createObjectURL(new Blob([f.text], { type: f.type })), name: f.name, warnings: f.warnings });
    } catch (e) {
      setOffered(null);
      setError((e as Error).message);
    }
  };
  return (
    <section className="panel" aria-labelledby="share-h">
      <h2 id="share-h">Share</h2>
      <div className="share-buttons">
        <button onClick={() => void copy()} data-testid="copy-link">
          Copy link
        </button>
        <button onClick={() => void save('experiment')} data-testid="export-json">
          Experiment JSON
        </button>
        <button onClick={() => void save('cli')} data-testid="export-cli">
          CLI config
        </button>
        <button onClick={() => void save('mergekit')} data-testid="export-yaml">
          mergekit YAML
        </button>
        <label className="file-button">
          Open…
          <input
            type="file"
            accept=".json,.yaml,.yml"
            data-testid="import-config"
            onChange={(e) => {
              const file = e.target.files?.[0];
              e.target.value = '';
              if (!file) return;
              setError(null);
              setOffered(null);
              importFile(file).then(
                (warnings) => setNote(`Opened ${file.name}.${warnings.length ? ` ${warnings.join(' ')}` : ''}`),
                (err: Error) => setError(`${file.name}: ${err.message}`),
              );
            }}
          />
        </label>
      </div>
      {offered && (
        <p className="download">
          <a href={offered.url} download={offered.name} data-testid="export-link">
            Download {offered.name}
          </a>
          {offered.warnings.map((w) => (
            <span className="hint" key={w}>
              {' '}
              {w}
            </span>
          ))}
        </p>
      )}
      {note && <p className="hint">{note}</p>}
      {error && (
        <p className="error" role="alert" data-testid="share-error">
          {error}
        </p>
      )}
    </section>
  );
}
