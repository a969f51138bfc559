/**
 * What a masking merge keeps. TALL / Consensus: per layer, the share of weights used by no task mask
 * ("catastrophic"), by one ("selfish") or by two or more ("general"); methods.md 7 and 11. Masking methods (TIES,
 * DARE, Breadcrumbs, Consensus...): the fraction of each task's entries that survives, per layer.
 */
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { InterferenceReport } from '../../engine/merge/metrics';
import { seriesColour } from '../palette';
import { ChartFigure, legendText } from './ChartFigure';
import { formatPct, hasMaskData, keptRows, LAYER_AXIS, layerTooltipLabel, modelKey, USAGE_CLASSES, usageClasses, usageRows, type UsageClass } from './chartData';

const USAGE_COLOURS: Record<UsageClass, string> = { catastrophic: '#D55E00', selfish: '#E69F00', general: '#0072B2' };

const pctTooltip = (v: unknown) => (typeof v === 'number' ? formatPct(v) : String(v));

export function MaskOverlapChart({ interference, tasks, method }: { interference: InterferenceReport; tasks: string[]; method?: string }) {
  const name = method ?? 'This method';
  if (!hasMaskData(interference)) {
    return (
      <ChartFigure testId="mask-overlap-chart" title="Masks and kept weights" description="which weights a masking method keeps, per layer and per task.">
        <p className="chart-empty" data-testid="no-mask-note">
          {name} does not mask: every task-vector entry goes into the merge. Pick TIES, DARE, Breadcrumbs, TALL or Consensus to see which weights a mask keeps.
        </p>
      </ChartFigure>
    );
  }
  const usage = usageRows(interference);
  const kept = keptRows(interference);
  const totals = interference.usage ? usageClasses(interference.usage.total) : null;
  const keptTotal = interference.kept?.total;
  return (
    <ChartFigure
      testId="mask-overlap-chart"
      title="Masks and kept weights"
      description="which weights the method's masks keep, per layer (% of the layer's weights)."
      note={
        <>
          {totals && `Whole model: ${USAGE_CLASSES.map((c) => `${formatPct(totals[c.key])} ${c.key}`).join(', ')}. `}
          {keptTotal && `Kept per task: ${keptTotal.map((k, m) => `${tasks[m] ?? `model ${m + 1}`} ${formatPct(100 * k)}`).join('; ')}.`}
          {!totals && ' Catastrophic / selfish / general weights are counted for TALL masks (TALL, Consensus) only.'}
        </>
      }
    >
      <div className="chart-pair">
        {usage && (
          <div>
            <h4 className="chart-sub">TALL mask usage: weights used by c of {tasks.length} task masks</h4>
            <ResponsiveContainer width="100%" height={280}>
              <BarChart data={usage} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#ddd" vertical={false} />
                <XAxis dataKey="label" interval={0} label={{ value: LAYER_AXIS, position: 'insideBottom', offset: -16 }} />
                <YAxis domain={[0, 100]} ticks={[0, 25, 50, 75, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: '% of weights', angle: -90, position: 'insideLeft' }} />
                <Tooltip formatter={pctTooltip} labelFormatter={layerTooltipLabel} />
                <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
                {USAGE_CLASSES.map((c) => (
                  <Bar key={c.key} dataKey={c.key} name={c.label} stackId="usage" fill={USAGE_COLOURS[c.key]} isAnimationActive={false} />
                ))}
              </BarChart>
            </ResponsiveContainer>
          </div>
        )}
        {kept && (
          <div>
            <h4 className="chart-sub">Entries kept per task</h4>
            <ResponsiveContainer width="100%" height={280}>
              <LineChart data={kept} margin={{ top: 8, right: 16, bottom: 28, left: 8 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
                <XAxis dataKey="label" interval={0} label={{ value: LAYER_AXIS, position: 'insideBottom', offset: -16 }} />
                <YAxis domain={[0, 100]} ticks={[0, 25, 50, 75, 100]} tickFormatter={(v: number) => `${v}%`} label={{ value: '% of entries kept', angle: -90, position: 'insideLeft' }} />
                <Tooltip formatter={pctTooltip} labelFormatter={layerTooltipLabel} />
                <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
                {tasks.map((t, m) => (
                  <Line key={t + m} dataKey={modelKey(m)} name={t} stroke={seriesColour(m)} dot={{ r: 2 }} isAnimationActive={false} />
                ))}
              </LineChart>
            </ResponsiveContainer>
          </div>
        )}
      </div>
    </ChartFigure>
  );
}
