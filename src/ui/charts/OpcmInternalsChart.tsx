/**
 * Inside OPCM (methods.md 1.3 and 11): at every step, each Linear weight's incoming task vector is projected away from
 * the top-r singular directions of the merged task vector. Two layer x step heatmaps show the protected rank r and
 * the share of the incoming task vector's energy the projection removed; next to them, lambda_t against sqrt(t).
 */
import { useId, useState } from 'react';
import type { ContinualReport } from '../../engine/merge/continual';
import { ChartFigure } from './ChartFigure';
import { niceCeil } from './chartData';
import { NEGATIVE_HUE, POSITIVE_HUE, sequentialColour } from './colourScale';
import { opcmGrid } from './continualData';
import { Heatmap } from './Heatmap';
import { hasLambda, LambdaChart } from './LambdaChart';

export function OpcmInternalsChart({ report }: { report: ContinualReport }) {
  const [group, setGroup] = useState<'weight' | 'block'>('block');
  const selectId = useId();
  const grid = opcmGrid(report.steps, group);
  const empty = grid.rows.length === 0;
  const maxRank = Math.max(1, ...grid.rank.flat().filter((v): v is number => v !== null));
  const rankTicks = [0, Math.round(maxRank / 2), maxRank];
  // Removed energy is usually a small share: the scale ends at a round value above the largest one, not at 100 %.
  const maxRemoved = Math.min(100, niceCeil(100 * Math.max(0, ...grid.removed.flat().filter((v): v is number => v !== null))));
  const cellWidth = Math.max(28, Math.min(64, Math.floor(320 / Math.max(1, grid.steps.length))));
  const cellHeight = grid.rows.length <= 16 ? 22 : grid.rows.length <= 40 ? 14 : 9;
  const rows = grid.rows;
  const cols = grid.steps.map((t) => ({ label: String(t), title: `step ${t}` }));
  const lastRemoved = grid.removed.map((r) => r[r.length - 1]).filter((v): v is number => v !== null && v !== undefined);
  const meanRemoved = lastRemoved.length ? lastRemoved.reduce((a, b) => a + b, 0) / lastRemoved.length : null;
  return (
    <ChartFigure
      testId="opcm-internals-chart"
      title="OPCM internals"
      description="per Linear weight (or pooled per block) and per step: the protected rank r of the merged task vector, and the removed-energy ratio ‖τ − τ̃‖² / ‖τ‖² of the incoming task vector's projection; step 1 projects nothing."
      controls={
        !empty && (
          <>
            <label htmlFor={selectId}>rows</label>
            <select id={selectId} value={group} onChange={(e) => setGroup(e.target.value as 'weight' | 'block')}>
              <option value="block">per block (mean r, pooled energy)</option>
              <option value="weight">per Linear weight</option>
            </select>
          </>
        )
      }
      note={empty ? undefined : meanRemoved !== null && `At the last step the projection removed ${(100 * meanRemoved).toFixed(1)} % of the incoming energy on average over the rows.`}
    >
      {empty ? (
        <p className="chart-empty" data-testid="opcm-internals-empty">
          {hasLambda(report.steps) ? 'Only one model merged so far: OPCM projects from the second step on.' : 'These diagnostics exist for OPCM only; this continual method does not project.'}
        </p>
      ) : (
        <div className="heatmap-pair">
          <div>
            <h4 className="chart-sub">Protected rank r (singular directions)</h4>
            <Heatmap
              rows={rows}
              cols={cols}
              values={grid.rank}
              colour={(v) => sequentialColour(v, 0, maxRank, NEGATIVE_HUE)}
              format={(v) => (Number.isInteger(v) ? String(v) : v.toFixed(1))}
              legend={{ lo: 0, hi: maxRank, title: 'protected rank r (directions)', colour: (v) => sequentialColour(v, 0, maxRank, NEGATIVE_HUE), ticks: rankTicks }}
              ariaLabel="Protected rank per layer and step"
              xTitle="step t"
              cellWidth={cellWidth}
              cellHeight={cellHeight}
            />
          </div>
          <div>
            <h4 className="chart-sub">Removed energy of the incoming task vector</h4>
            <Heatmap
              rows={rows}
              cols={cols}
              values={grid.removed.map((r) => r.map((v) => (v === null ? null : 100 * v)))}
              colour={(v) => sequentialColour(v, 0, maxRemoved, POSITIVE_HUE)}
              format={(v) => `${v < 10 ? v.toFixed(1) : v.toFixed(0)}%`}
              legend={{ lo: 0, hi: maxRemoved, title: 'removed energy (% of ‖τ‖²)', colour: (v) => sequentialColour(v, 0, maxRemoved, POSITIVE_HUE) }}
              ariaLabel="Removed-energy ratio per layer and step"
              xTitle="step t"
              cellWidth={cellWidth}
              cellHeight={cellHeight}
            />
          </div>
        </div>
      )}
      {hasLambda(report.steps) && (
        <div>
          <h4 className="chart-sub">Adaptive scale λ_t and √t</h4>
          <LambdaChart steps={report.steps} height={240} />
        </div>
      )}
    </ChartFigure>
  );
}
