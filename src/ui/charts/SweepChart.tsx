/**
 * Average accuracy of the merged model as a function of one parameter (the method's main coefficient by default), with the current value
 * marked and the base / individual averages for reference; per-task curves on demand. Points arrive one by one:
 * until all `total` are in, the chart says it is still computing.
 */
import { useState } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { BASE_COLOUR, MERGED_COLOUR, seriesColour } from '../palette';
import { ChartFigure, legendText, Toggle } from './ChartFigure';
import { bestPoint, sweepRows, type SweepPoint } from './continualData';

export interface SweepChartProps {
  param: string;
  /** What the x axis's numbers are, after the parameter's name (default: a unitless coefficient). */
  unit?: string;
  points: SweepPoint[];
  current: number;
  baseAverage?: number;
  individualAverage?: number;
  tasks: { id: string; title: string }[];
  /** Every value the sweep will compute: sets the x range from the start; fewer `points` means it is still running. */
  values?: number[];
}

export function SweepChart(p: SweepChartProps) {
  const [perTask, setPerTask] = useState(false);
  const rows = sweepRows(p.points);
  const total = p.values?.length;
  const partial = total !== undefined && p.points.length < total;
  const best = bestPoint(p.points);
  const hasPerTask = p.points.some((pt) => pt.perTask && Object.keys(pt.perTask).length > 0);
  const xs = [...(p.values ?? []), ...rows.map((r) => r.value!), p.current];
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  // The current-value label sits on the side of the line with more room.
  const currentLabel = p.current > (xMin + xMax) / 2 ? 'insideTopRight' : 'insideTopLeft';
  return (
    <ChartFigure
      testId="sweep-chart"
      title={`Accuracy vs ${p.param}`}
      description={`average accuracy over the tasks (%) of the merge at each value of ${p.param}, everything else fixed; the vertical line marks the current value.`}
      controls={hasPerTask && <Toggle label="per-task lines" checked={perTask} onChange={setPerTask} />}
      note={
        <span data-testid="sweep-status">
          {partial ? `computing… ${p.points.length} of ${total} values` : `${p.points.length} values`}
          {best && ` · best so far: ${p.param} = ${best.value} gives ${best.average.toFixed(1)} %`}
        </span>
      }
    >
      {rows.length === 0 ? (
        <p className="chart-empty">{partial ? 'computing the first value…' : 'No sweep yet.'}</p>
      ) : (
        <ResponsiveContainer width="100%" height={320}>
          <LineChart data={rows} margin={{ top: 8, right: 24, bottom: 28, left: 8 }} className={partial ? 'chart-partial' : undefined}>
            <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
            <XAxis dataKey="value" type="number" domain={[xMin, xMax]} label={{ value: `${p.param} (${p.unit ?? 'coefficient, unitless'})`, position: 'insideBottom', offset: -16 }} />
            <YAxis domain={[0, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: 'accuracy (%)', angle: -90, position: 'insideLeft' }} />
            <Tooltip formatter={(v) => (typeof v === 'number' ? `${v.toFixed(1)} %` : v)} labelFormatter={(v) => `${p.param} = ${v}`} />
            <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
            {p.baseAverage !== undefined && <ReferenceLine y={p.baseAverage} stroke={BASE_COLOUR} strokeDasharray="6 4" label={{ value: `base ${p.baseAverage.toFixed(1)} %`, position: 'insideBottomRight', fontSize: 11 }} />}
            {p.individualAverage !== undefined && (
              <ReferenceLine y={p.individualAverage} stroke={seriesColour(0)} strokeDasharray="6 4" label={{ value: `fine-tuned ${p.individualAverage.toFixed(1)} %`, position: 'insideTopRight', fontSize: 11 }} />
            )}
            <ReferenceLine x={p.current} stroke={seriesColour(5)} strokeWidth={2} label={{ value: `current ${p.current}`, position: currentLabel, fontSize: 11 }} />
            {perTask &&
              p.tasks.map((t, i) => (
                <Line key={t.id} dataKey={`task:${t.id}`} name={t.title} stroke={seriesColour(i)} strokeWidth={1} dot={false} strokeOpacity={0.8} isAnimationActive={false} />
              ))}
            <Line dataKey="average" name="average over tasks" stroke={MERGED_COLOUR} strokeWidth={2.5} dot={{ r: 3 }} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
      )}
    </ChartFigure>
  );
}
