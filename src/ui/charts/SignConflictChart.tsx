/**
 * Per-layer sign conflicts: the share of coordinates where one task vector's non-zero entry is positive and
 * another's negative, before the method and among its contributions after trimming or masking (when it reports them).
 */
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { InterferenceReport } from '../../engine/merge/metrics';
import { seriesColour } from '../palette';
import { ChartFigure, legendText } from './ChartFigure';
import { formatPct, LAYER_AXIS, layerTooltipLabel, signConflictRows } from './chartData';

export function SignConflictChart({ interference, method }: { interference: InterferenceReport; method?: string }) {
  const rows = signConflictRows(interference);
  const after = interference.signs.contributions;
  const afterName = `after ${method ?? 'the method'} (contributions)`;
  const total = interference.signs.taskVectors.total;
  return (
    <ChartFigure
      testId="sign-conflict-chart"
      title="Sign conflicts per layer"
      description="% of coordinates where the task vectors disagree in sign (some positive, some negative entry), layer by layer; TIES-style methods elect one sign to remove these conflicts."
      note={
        <>
          Whole model: {formatPct(100 * total.conflictRate)} of {total.coordinates.toLocaleString('en')} coordinates before
          {after ? `, ${formatPct(100 * after.total.conflictRate)} ${afterName}` : '; this method reports no per-task contributions, so there is no "after"'}.
        </>
      }
    >
      <ResponsiveContainer width="100%" height={280}>
        <BarChart data={rows} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#ddd" vertical={false} />
          <XAxis dataKey="label" interval={0} label={{ value: LAYER_AXIS, position: 'insideBottom', offset: -16 }} />
          <YAxis domain={[0, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: 'coordinates in conflict (%)', angle: -90, position: 'insideBottomLeft', offset: 12 }} width={72} />
          <Tooltip formatter={(v) => (typeof v === 'number' ? formatPct(v) : v)} labelFormatter={layerTooltipLabel} />
          <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
          <Bar dataKey="before" name="task vectors (before)" fill={seriesColour(0)} isAnimationActive={false} />
          {after && <Bar dataKey="after" name={afterName} fill={seriesColour(5)} isAnimationActive={false} />}
        </BarChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}
