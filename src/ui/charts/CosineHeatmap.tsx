/**
 * Pairwise cosine similarity of the task vectors, over the whole model or one layer group. The colour scale is
 * symmetric around 0 and, by default, fitted to the largest off-diagonal value: task vectors of different tasks are
 * nearly orthogonal, so on a fixed +-1 scale every interesting cell would look white. The diagonal (1 by
 * definition) is drawn grey, outside the scale.
 */
import { useId, useState } from 'react';
import type { InterferenceReport } from '../../engine/merge/metrics';
import { ChartFigure, Toggle } from './ChartFigure';
import { cosineChoices, maxOffDiagonal, niceCeil } from './chartData';
import { divergingColour } from './colourScale';
import { Heatmap } from './Heatmap';

const DIAGONAL_FILL = '#c9ced6';

export function CosineHeatmap({ interference, tasks }: { interference: InterferenceReport; tasks: string[] }) {
  const choices = cosineChoices(interference);
  const [key, setKey] = useState('total');
  const [fullScale, setFullScale] = useState(false);
  const selectId = useId();
  const choice = choices.find((c) => c.key === key) ?? choices[0]!;
  const limit = fullScale ? 1 : Math.min(1, niceCeil(maxOffDiagonal(choice.cos)));
  const T = tasks.length;
  const cell = Math.max(16, Math.min(46, Math.floor(400 / Math.max(T, 1))));
  const axis = tasks.map((t) => ({ label: t.length > 22 ? `${t.slice(0, 21)}…` : t, title: t }));
  const format = (v: number) => (Math.abs(v) < 0.005 ? '0.00' : v.toFixed(2)); // no "-0.00"
  const offDiagonal = choice.cos.flatMap((row, i) => row.filter((_, j) => j !== i));
  const mean = offDiagonal.length ? offDiagonal.reduce((a, b) => a + b, 0) / offDiagonal.length : null;
  return (
    <ChartFigure
      testId="cosine-heatmap"
      title="Task-vector cosine similarity"
      description={`cos(τ_i, τ_j) of every pair of task vectors (τ = fine-tuned − base) over ${choice.label}: 0 = orthogonal (little interference), positive = the tasks pull the same way, negative = opposite ways.`}
      controls={
        <>
          <label htmlFor={selectId}>layers</label>
          <select id={selectId} value={choice.key} onChange={(e) => setKey(e.target.value)}>
            {choices.map((c) => (
              <option key={c.key} value={c.key}>
                {c.label}
              </option>
            ))}
          </select>
          <Toggle label="full ±1 scale" checked={fullScale} onChange={setFullScale} />
        </>
      }
      note={mean === null ? 'A single task vector: no pairs to compare.' : `Mean off-diagonal cosine ${mean.toFixed(3)}; the colour scale spans ±${limit} (unitless); the diagonal is 1 by definition.`}
    >
      <Heatmap
        rows={axis}
        cols={axis}
        values={choice.cos}
        colour={(v, i, j) => (i === j ? DIAGONAL_FILL : divergingColour(v, limit))}
        format={format}
        legend={{ lo: -limit, hi: limit, title: 'cosine similarity (unitless)', colour: (v) => divergingColour(v, limit) }}
        ariaLabel={`Cosine similarity of ${T} task vectors over ${choice.label}`}
        xTitle="task vector j"
        yTitle="task vector i"
        cellWidth={cell}
        cellHeight={cell}
        rotateColumnLabels
      />
    </ChartFigure>
  );
}
