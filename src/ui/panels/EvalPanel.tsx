/** Evaluation settings: images per task while a slider moves and once it rests, and the sampling seed. */
import { setEvaluation } from '../../app/actions';
import { useAppStore } from '../hooks/useAppStore';

const LIVE_CHOICES = [8, 16, 32, 64, 128];
const SETTLED_CHOICES = [32, 64, 128, 256, 'all'] as const;

/** The usual choices plus the current value (a link may set any size), in order. */
function choicesWith(usual: readonly (number | 'all')[], current: number | 'all'): (number | 'all')[] {
  if (usual.includes(current)) return [...usual];
  const nums = [...usual, current].filter((n): n is number => n !== 'all').sort((a, b) => a - b);
  return usual.includes('all') ? [...nums, 'all'] : nums;
}

/** A sample-size picker: images per task, or the whole test sets. */
function SampleSelect(p: { id: string; label: string; value: number | 'all'; choices: readonly (number | 'all')[]; onChange: (n: number | 'all') => void }) {
  return (
    <div className="param">
      <label htmlFor={p.id} className="param-label">
        {p.label}
      </label>
      <select id={p.id} data-testid={p.id} value={String(p.value)} onChange={(e) => p.onChange(e.target.value === 'all' ? 'all' : Number(e.target.value))}>
        {choicesWith(p.choices, p.value).map((n) => (
          <option key={n} value={String(n)}>
            {n === 'all' ? 'whole test sets' : `${n} images / task`}
          </option>
        ))}
      </select>
    </div>
  );
}

export function EvalPanel() {
  const evaluation = useAppStore((s) => s.evaluation);
  const suite = useAppStore((s) => s.suite);
  const software = useAppStore((s) => s.gpu.state === 'ready' && s.gpu.software);
  if (!suite) return null;
  return (
    <section className="panel" aria-labelledby="eval-h">
      <h2 id="eval-h">Evaluation</h2>
      <SampleSelect id="live-samples" label="while dragging" value={evaluation.liveSamples} choices={LIVE_CHOICES} onChange={(n) => n !== 'all' && setEvaluation({ liveSamples: n })} />
      <SampleSelect id="settled-samples" label="at rest" value={evaluation.settledSamples} choices={SETTLED_CHOICES} onChange={(n) => setEvaluation({ settledSamples: n })} />
      <div className="param">
        <label htmlFor="eval-seed" className="param-label">
          sample seed
        </label>
        <input
          id="eval-seed"
          className="param-number"
          type="number"
          min={0}
          step={1}
          value={evaluation.seed}
          onChange={(e) => {
            const v = Number(e.target.value);
            if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) setEvaluation({ seed: v });
          }}
        />
      </div>
      <p className="hint">
        Samples are stratified by class and seeded, so a link reproduces them.{' '}
        {software ? 'This is a software GPU (tens of images per second): larger samples take a while.' : ''}
      </p>
    </section>
  );
}
