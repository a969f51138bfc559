/**
 * The frame every chart shares: a figure named by its title and described by its caption (so screen readers
 * announce both), optional controls next to the caption, and an optional note under the plot.
 */
import { useId, type ReactNode } from 'react';

export function ChartFigure(props: { testId: string; title: string; description: ReactNode; controls?: ReactNode; note?: ReactNode; children: ReactNode }) {
  const id = useId();
  return (
    <figure className="chart" data-testid={props.testId} aria-labelledby={`${id}-t`} aria-describedby={`${id}-d`}>
      <figcaption>
        <strong id={`${id}-t`}>{props.title}</strong> — <span id={`${id}-d`}>{props.description}</span>
        {props.controls && <span className="chart-controls">{props.controls}</span>}
      </figcaption>
      {props.children}
      {props.note && <p className="totals">{props.note}</p>}
    </figure>
  );
}

/** A labelled checkbox for the chart controls. */
export function Toggle({ label, checked, onChange }: { label: string; checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <label>
      <input type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} /> {label}
    </label>
  );
}

/** Legend entries in the text colour: series colours such as Okabe-Ito yellow are too light for text on white. */
export const legendText = (value: unknown) => <span className="legend-text">{String(value)}</span>;
