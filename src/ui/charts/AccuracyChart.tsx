/**
 * Per-task accuracy of the merged model next to the base and each task's own fine-tuned model, on the suite's fixed
 * heads; absolute accuracy or normalized (merged / fine-tuned, the field's convention).
 */
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { SuiteState } from '../../app/store';
import { BASE_COLOUR, MERGED_COLOUR, seriesColour } from '../palette';
import { slantedLabelMargin } from './chartData';

const average = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
/** Slant of the task labels (degrees below the axis); the left margin follows it. */
const LABEL_ANGLE = 20;

export function AccuracyChart({ suite, normalized, onNormalized, stale }: { suite: SuiteState; normalized: boolean; onNormalized: (v: boolean) => void; stale: boolean }) {
  const { base, individual, merged } = suite;
  const value = (acc: Record<string, number> | null, id: string) => {
    const v = acc?.[id];
    if (v === undefined) return undefined;
    return normalized && individual?.[id] ? (100 * v) / individual[id]! : v;
  };
  const rows = suite.tasks.map((t) => ({ task: t.title, id: t.id, base: value(base, t.id), individual: value(individual, t.id), merged: value(merged, t.id) }));
  const avg = (k: 'base' | 'individual' | 'merged') => {
    const xs = rows.map((r) => r[k]).filter((x): x is number => x !== undefined);
    return rows.length > 0 && xs.length === rows.length ? average(xs) : null;
  };
  const summary = (['base', 'individual', 'merged'] as const).map((k) => [k, avg(k)] as const);
  return (
    <figure className="chart" data-testid="accuracy-chart">
      <figcaption>
        <strong>Accuracy per task</strong> — {suite.name}; {suite.samples} test images per task (stratified sample); fixed heads from the base, as CLIP&apos;s
        zero-shot heads.
        <span className="chart-controls">
          <label>
            <input type="checkbox" checked={normalized} onChange={(e) => onNormalized(e.target.checked)} /> normalized (% of fine-tuned)
          </label>
        </span>
      </figcaption>
      <ResponsiveContainer width="100%" height={320}>
        <BarChart data={rows} margin={{ top: 8, right: 16, bottom: 40, left: slantedLabelMargin(rows[0]?.task ?? '', LABEL_ANGLE, 8) }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#ddd" vertical={false} />
          <XAxis dataKey="task" angle={-LABEL_ANGLE} textAnchor="end" height={56} interval={0} />
          <YAxis domain={[0, normalized ? 'auto' : 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: normalized ? '% of fine-tuned' : 'accuracy (%)', angle: -90, position: 'insideLeft' }} />
          <Tooltip formatter={(v) => (typeof v === 'number' ? `${v.toFixed(1)} %` : v)} />
          <Legend verticalAlign="top" />
          <Bar dataKey="base" name="base (pretrained)" fill={BASE_COLOUR} isAnimationActive={false} />
          <Bar dataKey="individual" name="fine-tuned on the task" fill={seriesColour(0)} isAnimationActive={false} />
          <Bar dataKey="merged" name="merged" fill={MERGED_COLOUR} isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
      <p className="totals" data-testid="accuracy-averages">
        Average over tasks:{' '}
        {summary.map(([k, v]) => `${k} ${v === null ? '…' : `${v.toFixed(1)} %`}`).join(' · ')}
        {suite.message && suite.state !== 'error' ? ` — ${suite.message}` : ''}
        {stale && !suite.message ? ' — updating for the new settings…' : ''}
      </p>
      {suite.state === 'error' && (
        <p className="error" role="alert">
          The demo suite could not be loaded: {suite.message}
        </p>
      )}
    </figure>
  );
}
