/** Picks the base model and the fine-tuned models (file pickers and drag-and-drop). */
import { useState, type DragEvent } from 'react';
import { addModelFiles, removeModel, setBaseFiles } from '../../app/actions';
import type { ModelEntry } from '../../app/store';
import { formatBytes } from '../format';
import { useAppStore } from '../hooks/useAppStore';
import { seriesColour } from '../palette';

function DropZone(props: { label: string; testId: string; multiple: boolean; onFiles: (files: File[]) => void; children?: React.ReactNode }) {
  const [over, setOver] = useState(false);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    props.onFiles([...e.dataTransfer.files]);
  };
  return (
    <div
      className={`dropzone${over ? ' over' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <label className="file-button">
        {props.label}
        <input
          type="file"
          data-testid={props.testId}
          accept=".safetensors,.json"
          multiple={props.multiple}
          onChange={(e) => {
            props.onFiles([...(e.target.files ?? [])]);
            e.target.value = '';
          }}
        />
      </label>
      <span className="hint">or drop files here</span>
      {props.children}
    </div>
  );
}

function ModelRow({ m, colour, onRemove }: { m: ModelEntry; colour?: string; onRemove?: () => void }) {
  return (
    <li className="model-row">
      {colour && <span className="swatch" style={{ background: colour }} aria-hidden />}
      <span className="model-name" title={m.name}>
        {m.name}
      </span>
      <span className="model-meta">
        {m.tensors} tensors · {formatBytes(m.bytes)}
      </span>
      {onRemove && (
        <button className="icon" onClick={onRemove} aria-label={`remove ${m.name}`}>
          ×
        </button>
      )}
    </li>
  );
}

export function ModelsPanel() {
  const base = useAppStore((s) => s.base);
  const models = useAppStore((s) => s.models);
  const inputError = useAppStore((s) => s.inputError);
  return (
    <section className="panel" aria-labelledby="models-h">
      <h2 id="models-h">Models</h2>
      <h3>Base (pretrained)</h3>
      <DropZone label="Choose base…" testId="base-input" multiple onFiles={(f) => void setBaseFiles(f)} />
      {base && (
        <ul className="models">
          <ModelRow m={base} />
        </ul>
      )}
      <h3>Fine-tuned</h3>
      <DropZone label="Add fine-tuned…" testId="models-input" multiple onFiles={(f) => void addModelFiles(f)} />
      <ul className="models">
        {models.map((m, i) => (
          <ModelRow key={m.id} m={m} colour={seriesColour(i)} onRemove={() => removeModel(m.id)} />
        ))}
      </ul>
      {inputError && (
        <p className="error" role="alert">
          {inputError}
        </p>
      )}
    </section>
  );
}
