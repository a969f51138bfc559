/**
 * Per-tensor L2 norms: each fine-tuned model's task vector, the merged task vector, and the base weights for scale.
 * Props in, no fetching: the chart draws whatever report it is given.
 */
import { useMemo, useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { MergeReport } from '../../engine/merge/report';
import { shortTensorName } from '../format';
import { logDomain, slantedLabelMargin } from './chartData';
import { BASE_COLOUR, MERGED_COLOUR, seriesColour } from '../palette';

type Row = Record<string, number | string>;
/** Slant of the tensor labels (degrees below the axis); the left margin follows it. */
const LABEL_ANGLE = 30;

export function NormsChart({ report, names = report.models }: { report: MergeReport; names?: readonly string[] }) {
  const [showBase, setShowBase] = useState(false);
  const [log, setLog] = useState(true);
  const rows = useMemo<Row[]>(
    () =>
      report.tensors
        .filter((t) => t.action === 'merge')
        .map((t, i) => {
          const row: Row = { i, name: t.name, short: shortTensorName(t.name), merged: t.mergedNorm ?? 0, base: t.baseNorm ?? 0 };
          t.taskVectorNorms?.forEach((n, m) => (row[`m${m}`] = n));
          return row;
        }),
    [report],
  );
  // A log axis cannot show zeros: clamp them to a small positive floor and say so in the tooltip.
  const floor = 1e-12;
  const data = log ? rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' && k !== 'i' ? Math.max(v, floor) : v]))) : rows;
  // Explicit log-axis bounds: recharts' automatic ones can clip the smallest series.
  const shown = data.flatMap((r) => Object.entries(r).filter(([k, v]) => typeof v === 'number' && k !== 'i' && (showBase || k !== 'base')).map(([, v]) => v as number));
  const yDomain: [number, number] | [number, 'auto'] = (log && logDomain(shown)) || [0, 'auto'];
  const dots = rows.length <= 40;
  return (
    <figure className="chart" data-testid="norms-chart">
      <figcaption>
        <strong>Per-tensor norms</strong> — L2 norm of each task vector (τ = fine-tuned − base) and of the merged task vector, tensor by tensor.
        <span className="chart-controls">
          <label>
            <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} /> log scale
          </label>
          <label>
            <input type="checkbox" checked={showBase} onChange={(e) => setShowBase(e.target.checked)} /> base weights ‖θ₀‖
          </label>
        </span>
      </figcaption>
      <ResponsiveContainer width="100%" height={390}>
        <LineChart data={data} margin={{ top: 8, right: 24, bottom: 64, left: slantedLabelMargin((rows[0]?.short as string | undefined) ?? '', LABEL_ANGLE, 64) }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
          <XAxis
            dataKey="i"
            type="number"
            domain={[0, Math.max(rows.length - 1, 1)]}
            tickFormatter={(i: number) => (rows[i]?.short as string) ?? ''}
            angle={-LABEL_ANGLE}
            textAnchor="end"
            // Room for the longest tick labels at -30 degrees ('layers.11.self_attn.out_proj.w') above the axis title.
            height={90}
            interval="preserveStartEnd"
            label={{ value: 'tensor (file order by name)', position: 'insideBottom', offset: -56 }}
          />
          <YAxis scale={log ? 'log' : 'linear'} domain={yDomain} allowDataOverflow tickFormatter={(v: number) => v.toPrecision(2)} label={{ value: 'L2 norm', angle: -90, position: 'insideLeft' }} />
          <Tooltip labelFormatter={(i) => (rows[Number(i)]?.name as string) ?? ''} formatter={(v) => (typeof v === 'number' ? v.toPrecision(4) : v)} />
          {/* No fixed height: with many models the legend wraps, and the plot must start below it. */}
          <Legend verticalAlign="top" />
          {names.map((name, m) => (
            <Line key={name + m} dataKey={`m${m}`} name={`τ ${name}`} stroke={seriesColour(m)} dot={dots ? { r: 2 } : false} strokeWidth={1.5} isAnimationActive={false} />
          ))}
          <Line dataKey="merged" name="merged task vector" stroke={MERGED_COLOUR} dot={dots ? { r: 3 } : false} strokeWidth={2.5} isAnimationActive={false} />
          {showBase && <Line dataKey="base" name="base ‖θ₀‖" stroke={BASE_COLOUR} strokeDasharray="5 4" dot={false} isAnimationActive={false} />}
        </LineChart>
      </ResponsiveContainer>
      <p className="totals" data-testid="norm-totals">
        Whole model: ‖θ₀‖ = {report.totals.baseNorm.toPrecision(4)}; merged ‖Δ‖ = {report.totals.mergedNorm.toPrecision(4)};{' '}
        {names.map((n, m) => `‖τ ${n}‖ = ${report.totals.taskVectorNorms[m]!.toPrecision(4)}`).join('; ')}
      </p>
    </figure>
  );
}
