/**
 * Per-layer sign conflicts: the share of coordinates where one task vector's non-zero entry is positive and
 * another's negative, before the method and among its contributions after trimming or masking (when it reports them);
 * or, switched, the mean sign agreement ratio (methods.md section 11), which still separates layers and methods where
 * the conflict rate saturates (many tasks).
 */
import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { InterferenceReport, SignStats } from '../../engine/merge/metrics';
import { seriesColour } from '../palette';
import { ChartFigure, legendText, Toggle } from './ChartFigure';
import { formatPct, LAYER_AXIS, layerTooltipLabel, signConflictRows, type SignMeasure } from './chartData';

const MEASURES: Record<SignMeasure, { axis: string; description: string }> = {
  conflicts: {
    axis: 'coordinates in conflict (%)',
    description: '% of coordinates where the task vectors disagree in sign (some positive, some negative entry), layer by layer; TIES-style methods elect one sign to remove these conflicts.',
  },
  agreement: {
    axis: 'mean sign agreement (%)',
    description: 'mean over coordinates of the sign agreement ratio |#positive − #negative| / (#positive + #negative) of the task vectors’ entries, layer by layer: 100 % when every coordinate’s entries share one sign, near 0 when they split evenly.',
  },
};

export function SignConflictChart({ interference, method }: { interference: InterferenceReport; method?: string }) {
  const [measure, setMeasure] = useState<SignMeasure>('conflicts');
  const rows = signConflictRows(interference, measure);
  const m = MEASURES[measure];
  const after = interference.signs.contributions;
  const afterName = `after ${method ?? 'the method'} (contributions)`;
  const total = interference.signs.taskVectors.total;
  const wholeModel = (s: SignStats) => `${formatPct(100 * s.conflictRate)} in conflict, mean agreement ${formatPct(100 * s.agreement)}`;
  return (
    <ChartFigure
      testId="sign-conflict-chart"
      title={measure === 'conflicts' ? 'Sign conflicts per layer' : 'Sign agreement per layer'}
      description={m.description}
      controls={<Toggle label="mean sign agreement instead" checked={measure === 'agreement'} onChange={(on) => setMeasure(on ? 'agreement' : 'conflicts')} />}
      note={
        <>
          Whole model, {total.coordinates.toLocaleString('en')} coordinates: before, {wholeModel(total)}
          {after ? `; ${afterName}, ${wholeModel(after.total)}` : '; this method reports no per-task contributions, so there is no "after"'}.
        </>
      }
    >
      <ResponsiveContainer width="100%" height={280}>
        <BarChart data={rows} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#ddd" vertical={false} />
          <XAxis dataKey="label" interval={0} label={{ value: LAYER_AXIS, position: 'insideBottom', offset: -16 }} />
          <YAxis domain={[0, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: m.axis, angle: -90, position: 'insideBottomLeft', offset: 12 }} width={72} />
          <Tooltip formatter={(v) => (typeof v === 'number' ? formatPct(v) : v)} labelFormatter={layerTooltipLabel} />
          {/* Padded: bars reach the top of the axis, whose "100%" tick would sit under the legend. */}
          <Legend itemSorter={null} formatter={legendText} verticalAlign="top" wrapperStyle={{ paddingBottom: 10 }} />
          <Bar dataKey="before" name="task vectors (before)" fill={seriesColour(0)} isAnimationActive={false} />
          {after && <Bar dataKey="after" name={afterName} fill={seriesColour(5)} isAnimationActive={false} />}
        </BarChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}
