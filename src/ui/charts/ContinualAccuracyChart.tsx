/**
 * Continual merging over steps: for each method, the average accuracy on the tasks merged so far after every step,
 * as the mean over several merge orders with a min-max band; below, one method's per-task accuracy over the steps.
 */
import { useId, useState } from 'react';
import { Area, CartesianGrid, ComposedChart, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { MERGED_COLOUR, seriesColour } from '../palette';
import { ChartFigure, legendText } from './ChartFigure';
import { continualRows, continualSpread, perTaskRows, type ContinualMethodRuns } from './continualData';

/** OPCM in black, the baselines in palette colours (the merged-model convention of the other charts). */
const methodColour = (id: string, i: number) => (id === 'opcm' ? MERGED_COLOUR : seriesColour(i));

const pctTooltip = (v: unknown) => (Array.isArray(v) ? `${Number(v[0]).toFixed(1)}–${Number(v[1]).toFixed(1)} %` : typeof v === 'number' ? `${v.toFixed(1)} %` : String(v));

export function ContinualAccuracyChart({ methods, tasks }: { methods: ContinualMethodRuns[]; tasks: { id: string; title: string }[] }) {
  const [selected, setSelected] = useState(methods[0]?.id ?? '');
  const selectId = useId();
  const rows = continualRows(methods);
  const method = methods.find((m) => m.id === selected) ?? methods[0];
  const orders = Math.max(0, ...methods.map((m) => m.orders.length));
  const steps = Math.max(1, ...methods.flatMap((m) => m.orders.map((o) => o.acc.length)));
  const stepTicks = Array.from({ length: steps }, (_, i) => i + 1);
  const finals = methods.flatMap((m) => {
    const last = continualSpread(m).at(-1);
    if (!last) return [];
    const range = last.n > 1 ? ` (${last.min.toFixed(1)}–${last.max.toFixed(1)}${last.std !== null ? `, sd ${last.std.toFixed(1)}` : ''})` : '';
    return [`${m.label} ${last.mean.toFixed(1)} %${range}`];
  });
  return (
    <ChartFigure
      testId="continual-accuracy-chart"
      title="Accuracy over a continual merge"
      description={`average accuracy (%) on the tasks merged so far, after each step; line = mean over ${orders} merge order${orders === 1 ? '' : 's'}${orders > 1 ? ', band = min to max over the orders' : ''}.`}
      note={finals.length > 0 && `After the last step: ${finals.join(' · ')}`}
    >
      {rows.length === 0 && <p className="chart-empty">No continual run has finished a step yet.</p>}
      <ResponsiveContainer width="100%" height={300}>
        <ComposedChart data={rows} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
          <XAxis dataKey="t" type="number" domain={[1, steps]} ticks={stepTicks} label={{ value: 'step t (models merged)', position: 'insideBottom', offset: -16 }} />
          <YAxis domain={[0, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: 'avg accuracy, seen tasks (%)', angle: -90, position: 'insideBottomLeft', offset: 12 }} width={72} />
          <Tooltip formatter={pctTooltip} labelFormatter={(t) => `after step ${t}`} />
          <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
          {methods.map((m, i) => (
            <Area key={`${m.id}_band`} dataKey={`${m.id}_band`} name={`${m.label} (min–max)`} stroke="none" fill={methodColour(m.id, i)} fillOpacity={0.15} legendType="none" isAnimationActive={false} />
          ))}
          {methods.map((m, i) => (
            <Line key={m.id} dataKey={m.id} name={m.label} stroke={methodColour(m.id, i)} strokeWidth={m.id === 'opcm' ? 2.5 : 1.8} dot={{ r: 2 }} isAnimationActive={false} />
          ))}
        </ComposedChart>
      </ResponsiveContainer>
      {method && (
        <div>
          <h4 className="chart-sub">
            <label htmlFor={selectId}>Per-task accuracy of </label>
            <select id={selectId} value={method.id} onChange={(e) => setSelected(e.target.value)}>
              {methods.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.label}
                </option>
              ))}
            </select>{' '}
            (mean over the orders in which the task was already merged)
          </h4>
          <ResponsiveContainer width="100%" height={260}>
            <LineChart data={perTaskRows(method, tasks.length)} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
              <XAxis dataKey="t" type="number" domain={[1, steps]} ticks={stepTicks} label={{ value: 'step t (models merged)', position: 'insideBottom', offset: -16 }} />
              <YAxis domain={[0, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: 'accuracy (%)', angle: -90, position: 'insideLeft' }} />
              <Tooltip formatter={pctTooltip} labelFormatter={(t) => `after step ${t}`} />
              <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
              {tasks.map((t, i) => (
                <Line key={t.id} dataKey={`task${i}`} name={t.title} stroke={seriesColour(i)} dot={{ r: 2 }} connectNulls={false} isAnimationActive={false} />
              ))}
            </LineChart>
          </ResponsiveContainer>
        </div>
      )}
    </ChartFigure>
  );
}
