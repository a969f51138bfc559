/**
 * OPCM's adaptive scale lambda_t next to sqrt(t), what mutually orthogonal task vectors of equal norm would give:
 * below sqrt(t), the merged task vectors overlap. Shared by the continual chart and the OPCM internals.
 */
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { StepDiagnostics } from '../../engine/merge/continual';
import { BASE_COLOUR, MERGED_COLOUR } from '../palette';
import { legendText } from './ChartFigure';
import { stepRows } from './continualData';

/** Whether the steps carry lambda_t (OPCM) at all. */
export const hasLambda = (steps: readonly StepDiagnostics[]) => steps.some((s) => s.lambda !== null);

export function LambdaChart({ steps, height = 260 }: { steps: readonly StepDiagnostics[]; height?: number }) {
  return (
    <ResponsiveContainer width="100%" height={height}>
      <LineChart data={stepRows(steps)} margin={{ top: 8, right: 16, bottom: 24, left: 8 }}>
        <CartesianGrid strokeDasharray="3 3" stroke="#ddd" />
        <XAxis dataKey="t" label={{ value: 'step t (models merged)', position: 'insideBottom', offset: -12 }} />
        <YAxis label={{ value: 'scale (unitless)', angle: -90, position: 'insideLeft' }} />
        <Tooltip formatter={(v) => (typeof v === 'number' ? v.toPrecision(4) : v)} />
        <Legend itemSorter={null} formatter={legendText} verticalAlign="top" />
        <Line dataKey="lambda" name="λ_t (OPCM)" stroke={MERGED_COLOUR} strokeWidth={2} isAnimationActive={false} />
        <Line dataKey="sqrtT" name="√t (orthogonal, equal norms)" stroke={BASE_COLOUR} strokeDasharray="5 4" isAnimationActive={false} />
      </LineChart>
    </ResponsiveContainer>
  );
}
