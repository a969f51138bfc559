/**
 * A continual merge step by step: OPCM's adaptive scale lambda_t next to sqrt(t) (what orthogonal task vectors of
 * equal norm would give), and the norms of each incoming task vector, their running mean and the merged task vector.
 */
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ContinualReport } from '../../engine/merge/continual';
import { MERGED_COLOUR, seriesColour } from '../palette';
import { stepRows } from './continualData';
import { hasLambda, LambdaChart } from './LambdaChart';

/** `lambda: false` leaves out the lambda_t chart (where OPCM's internals already show it). */
export function ContinualChart({ report, lambda = true }: { report: ContinualReport; lambda?: boolean }) {
  const rows = stepRows(report.steps);
  return (
    <figure className="chart" data-testid="continual-chart">
      <figcaption>
        <strong>Continual merge, step by step</strong> — models merged in the order {report.order.map((i) => i + 1).join(' → ')}.
      </figcaption>
      <div className="chart-pair">
        {lambda && hasLambda(report.steps) && <LambdaChart steps={report.steps} />}
        <ResponsiveContainer width="100%" height={260}>
          <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 24, left: 8 }}>
            <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
            <XAxis dataKey="t" label={{ value: 'step t', position: 'insideBottom', offset: -12 }} />
            <YAxis label={{ value: 'L2 norm', angle: -90, position: 'insideLeft' }} />
            <Tooltip />
            <Legend verticalAlign="top" />
            <Line dataKey="incoming" name="‖τ‖ of the incoming model" stroke={seriesColour(0)} isAnimationActive={false} />
            <Line dataKey="mean" name="running mean of ‖τ‖" stroke={seriesColour(1)} strokeDasharray="4 3" isAnimationActive={false} />
            <Line dataKey="merged" name="‖merged task vector‖" stroke={MERGED_COLOUR} strokeWidth={2} isAnimationActive={false} />
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
