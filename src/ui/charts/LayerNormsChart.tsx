/**
 * Per-layer L2 norms of every task vector and of the merged task vector: where in the depth the fine-tuning moved
 * the weights, and how much of that the merge keeps.
 */
import { useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { InterferenceReport } from '../../engine/merge/metrics';
import { MERGED_COLOUR, seriesColour } from '../palette';
import { ChartFigure, legendText, Toggle } from './ChartFigure';
import { LAYER_AXIS, layerNormRows, layerTooltipLabel, logDomain, modelKey, valuesOf } from './chartData';

export function LayerNormsChart({ interference, tasks }: { interference: InterferenceReport; tasks: string[] }) {
  const [log, setLog] = useState(true);
  const rows = layerNormRows(interference);
  const keys = [...tasks.map((_, m) => modelKey(m)), 'merged'];
  const domain = log ? logDomain(valuesOf(rows, keys)) : null;
  const useLog = log && domain !== null;
  // A log axis cannot place a zero: such points are left out (a gap in the line) rather than drawn at a fake value.
  const data = useLog ? rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && keys.includes(k) && v <= 0 ? null : v]))) : rows;
  const merged = interference.norms.total[tasks.length];
  return (
    <ChartFigure
      testId="layer-norms-chart"
      title="Norms per layer"
      description="L2 norm of each task vector (τ = fine-tuned − base) and of the merged task vector (merged − base), summed over the tensors of each layer."
      controls={<Toggle label="log scale" checked={log} onChange={setLog} />}
      note={`Whole model: ${tasks.map((t, m) => `‖τ ${t}‖ = ${interference.norms.total[m]!.toPrecision(3)}`).join('; ')}; merged ‖Δ‖ = ${merged === undefined ? '–' : merged.toPrecision(3)}.`}
    >
      <ResponsiveContainer width="100%" height={300}>
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
          <XAxis dataKey="label" interval={0} label={{ value: LAYER_AXIS, position: 'insideBottom', offset: -16 }} />
          <YAxis
            scale={useLog ? 'log' : 'linear'}
            domain={useLog ? domain : [0, 'auto']}
            allowDataOverflow={useLog}
            tickFormatter={(v: number) => v.toPrecision(2)}
            label={{ value: 'L2 norm (weight units)', angle: -90, position: 'insideBottomLeft', offset: 12 }}
            width={72}
          />
          <Tooltip formatter={(v) => (typeof v === 'number' ? v.toPrecision(4) : v)} labelFormatter={layerTooltipLabel} />
          {/* No fixed height: one entry per model wraps over several lines, and the plot must start below them. */}
          <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
          {tasks.map((t, m) => (
            <Line key={t + m} dataKey={modelKey(m)} name={`τ ${t}`} stroke={seriesColour(m)} dot={{ r: 2 }} strokeWidth={1.5} isAnimationActive={false} />
          ))}
          <Line dataKey="merged" name="merged task vector" stroke={MERGED_COLOUR} dot={{ r: 3 }} strokeWidth={2.5} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}
