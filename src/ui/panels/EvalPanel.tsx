/** Evaluation settings: images per task while a slider moves and once it rests, and the sampling seed. */
import { setEvaluation } from '../../app/actions';
import { useAppStore } from '../hooks/useAppStore';

const LIVE_CHOICES = [8, 16, 32, 64, 128];
const SETTLED_CHOICES = [32, 64, 128, 256, 'all'] as const;

/** The usual choices plus the current value (a link may set any size), in order. */
function choicesWith<T extends number | 'all'>(usual: readonly T[], current: T): T[] {
  if (usual.includes(current)) return [...usual];
  const nums = [...usual.filter((n) => n !== 'all'), current].sort((a, b) => (a as number) - (b as number));
  return (usual.includes('all' as T) ? [...nums, 'all'] : nums) as T[];
}

export function EvalPanel() {
  const evaluation = useAppStore((s) => s.evaluation);
  const suite = useAppStore((s) => s.suite);
  const software = useAppStore((s) => s.gpu.state === 'ready' && s.gpu.software);
  if (!suite) return null;
  return (
    <section className="panel" aria-labelledby="eval-h">
      <h2 id="eval-h">Evaluation</h2>
      <div className="param">
        <label htmlFor="live-samples" className="param-label">
          while dragging
        </label>
        <select id="live-samples" data-testid="live-samples" value={evaluation.liveSamples} onChange={(e) => setEvaluation({ liveSamples: Number(e.target.value) })}>
          {choicesWith(LIVE_CHOICES, evaluation.liveSamples).map((n) => (
            <option key={n} value={n}>
              {n} images / task
            </option>
          ))}
        </select>
      </div>
      <div className="param">
        <label htmlFor="settled-samples" className="param-label">
          at rest
        </label>
        <select
          id="settled-samples"
          data-testid="settled-samples"
          value={String(evaluation.settledSamples)}
          onChange={(e) => setEvaluation({ settledSamples: e.target.value === 'all' ? 'all' : Number(e.target.value) })}
        >
          {choicesWith<number | 'all'>(SETTLED_CHOICES, evaluation.settledSamples).map((n) => (
            <option key={n} value={String(n)}>
              {n === 'all' ? 'whole test sets' : `${n} images / task`}
            </option>
          ))}
        </select>
      </div>
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
        {software ? 'This is a software GPU (about 20 images/s): larger samples take minutes.' : ''}
      </p>
    </section>
  );
}
