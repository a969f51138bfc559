/** Picks the base model and the fine-tuned models (file pickers and drag-and-drop). */
import { useState, type DragEvent } from 'react';
import { addModelFiles, loadDemo, loadPreset, moveModel, removeModel, setBaseFiles, toggleModel } from '../../app/actions';
import { HUB_PRESETS } from '../../engine/eval/fusionbench/presets';
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
      <ModelLabel m={m} />
      {onRemove && (
        <button className="icon" onClick={onRemove} aria-label={`remove ${m.name}`}>
          ×
        </button>
      )}
    </li>
  );
}

function ModelLabel({ m }: { m: ModelEntry }) {
  return (
    <>
      <span className="model-name" title={m.name}>
        {m.name}
      </span>
      <span className="model-meta">
        {m.tensors} tensors · {formatBytes(m.bytes)}
      </span>
    </>
  );
}

/** The evaluation suite: the embedded demo, or a FusionBench benchmark from the Hub (downloads, then cached). */
function SuitePicker() {
  const suite = useAppStore((s) => s.suite);
  const value = suite?.id ?? 'own';
  return (
    <div className="param suite-picker">
      <label htmlFor="suite-select" className="param-label">
        suite
      </label>
      <select
        id="suite-select"
        data-testid="suite-select"
        value={value}
        onChange={(e) => {
          const id = e.target.value;
          if (id === 'demo') void loadDemo();
          else if (id !== 'own') void loadPreset(id);
        }}
      >
        <option value="demo">Embedded demo (8 tasks, offline)</option>
        {HUB_PRESETS.map((p) => (
          <option key={p.id} value={p.id}>
            {p.title} (Hub)
          </option>
        ))}
        {value === 'own' && <option value="own">Your own models (no suite)</option>}
      </select>
      {value !== 'demo' && value !== 'own' && (
        <p className="param-help">Models, text tower and test sets come from the Hub endpoint below; they are downloaded once and cached.</p>
      )}
    </div>
  );
}

const DRAG_TYPE = 'application/x-merge-playground-model';

/**
 * The fine-tuned models in merge order: drag a row (or focus it and press Alt+Up / Alt+Down) to reorder, tick to
 * switch a model in or out. Continual methods merge in this order.
 */
function FineTunedList({ models }: { models: ModelEntry[] }) {
  const [dragging, setDragging] = useState<string | null>(null);
  const [over, setOver] = useState<number | null>(null);
  return (
    <ol className="models fine-tuned" data-testid="model-list">
      {models.map((m, i) => (
        <li
          key={m.id}
          className={`model-row draggable${m.enabled ? '' : ' off'}${over === i && dragging !== m.id ? ' drop-target' : ''}`}
          draggable
          tabIndex={0}
          data-testid="model-row"
          aria-label={`${i + 1}. ${m.name}${m.enabled ? '' : ' (switched off)'}; Alt+Up or Alt+Down moves it`}
          onDragStart={(e) => {
            e.dataTransfer.setData(DRAG_TYPE, m.id);
            e.dataTransfer.effectAllowed = 'move';
            setDragging(m.id);
          }}
          onDragEnd={() => {
            setDragging(null);
            setOver(null);
          }}
          onDragOver={(e) => {
            if (!e.dataTransfer.types.includes(DRAG_TYPE)) return;
            e.preventDefault();
            setOver(i);
          }}
          onDrop={(e) => {
            const id = e.dataTransfer.getData(DRAG_TYPE);
            if (!id) return;
            e.preventDefault();
            e.stopPropagation();
            moveModel(id, i);
            setDragging(null);
            setOver(null);
          }}
          onKeyDown={(e) => {
            if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
            e.preventDefault();
            moveModel(m.id, i + (e.key === 'ArrowUp' ? -1 : 1));
          }}
        >
          <span className="drag-handle" aria-hidden>
            ⋮⋮
          </span>
          <input type="checkbox" checked={m.enabled} onChange={() => toggleModel(m.id)} aria-label={`include ${m.name} in the merge`} data-testid="model-toggle" />
          <span className="swatch" style={{ background: seriesColour(i) }} aria-hidden />
          <span className="order-index">{i + 1}</span>
          <ModelLabel m={m} />
          <span className="move-buttons">
            <button className="icon" disabled={i === 0} onClick={() => moveModel(m.id, i - 1)} aria-label={`move ${m.name} up`}>
              ↑
            </button>
            <button className="icon" disabled={i === models.length - 1} onClick={() => moveModel(m.id, i + 1)} aria-label={`move ${m.name} down`}>
              ↓
            </button>
          </span>
          <button className="icon" onClick={() => removeModel(m.id)} aria-label={`remove ${m.name}`}>
            ×
          </button>
        </li>
      ))}
    </ol>
  );
}

export function ModelsPanel() {
  const base = useAppStore((s) => s.base);
  const models = useAppStore((s) => s.models);
  const inputError = useAppStore((s) => s.inputError);
  return (
    <section className="panel" aria-labelledby="models-h">
      <h2 id="models-h">Models</h2>
      <SuitePicker />
      <h3>Base (pretrained)</h3>
      <DropZone label="Choose base…" testId="base-input" multiple onFiles={(f) => void setBaseFiles(f)} />
      {base && (
        <ul className="models">
          <ModelRow m={base} />
        </ul>
      )}
      <h3>Fine-tuned</h3>
      <DropZone label="Add fine-tuned…" testId="models-input" multiple onFiles={(f) => void addModelFiles(f)} />
      {models.length > 0 && <p className="hint">Merge order (drag to reorder; continual methods follow it). Untick to leave a model out.</p>}
      <FineTunedList models={models} />
      {inputError && (
        <p className="error" role="alert">
          {inputError}
        </p>
      )}
    </section>
  );
}
