/**
 * A labelled grid of coloured cells in plain SVG, with its colour legend, values printed in the cells when they fit,
 * a tooltip per cell, and the same numbers as a table for screen readers. The heatmaps (cosines, OPCM internals)
 * differ only in their data, colour scale and formats.
 */
import { useId } from 'react';
import { textColourOn } from './colourScale';

export interface HeatmapAxisItem {
  label: string;
  /** Longer name for tooltips (defaults to the label). */
  title?: string;
}

export interface HeatmapProps {
  rows: HeatmapAxisItem[];
  cols: HeatmapAxisItem[];
  /** values[row][col]; null draws an empty cell. */
  values: (number | null)[][];
  colour: (v: number, row: number, col: number) => string;
  format: (v: number) => string;
  /** Legend: the scale's ends, a title with the unit, and the colour function over [lo, hi]. */
  legend: { lo: number; hi: number; title: string; colour: (v: number) => string; ticks?: number[] };
  ariaLabel: string;
  xTitle?: string;
  yTitle?: string;
  cellWidth: number;
  cellHeight: number;
  /** Column labels rotated (long names) or level (short ones such as step numbers). */
  rotateColumnLabels?: boolean;
}

const FONT = 11;
const charWidth = FONT * 0.6;

export function Heatmap(p: HeatmapProps) {
  const gradientId = `hm${useId().replace(/[^a-zA-Z0-9_-]/g, '')}`;
  const longest = (items: HeatmapAxisItem[]) => Math.max(1, ...items.map((i) => i.label.length));
  const left = Math.min(170, 10 + longest(p.rows) * charWidth) + (p.yTitle ? 18 : 0);
  const rotate = p.rotateColumnLabels ?? false;
  const colLabelHeight = rotate ? Math.min(120, 12 + longest(p.cols) * charWidth * 0.72) : 18;
  const top = 6;
  const gridW = p.cols.length * p.cellWidth;
  const gridH = p.rows.length * p.cellHeight;
  const xTitleY = top + gridH + colLabelHeight + 14;
  const legendY = xTitleY + (p.xTitle ? 14 : 0);
  const legendW = Math.max(180, Math.min(320, gridW));
  const width = Math.max(left + gridW + 12, left + legendW + 24);
  const height = legendY + 44;
  const showValues = p.cellWidth >= 34 && p.cellHeight >= 17;
  const ticks = p.legend.ticks ?? [p.legend.lo, (p.legend.lo + p.legend.hi) / 2, p.legend.hi];
  const stops = Array.from({ length: 11 }, (_, i) => p.legend.lo + ((p.legend.hi - p.legend.lo) * i) / 10);
  const legendX = (v: number) => left + (p.legend.hi > p.legend.lo ? ((v - p.legend.lo) / (p.legend.hi - p.legend.lo)) * legendW : 0);
  const name = (i: HeatmapAxisItem) => i.title ?? i.label;
  return (
    <div className="heatmap">
      <svg role="img" aria-label={p.ariaLabel} width={width} height={height} viewBox={`0 0 ${width} ${height}`} className="heatmap-svg">
        <defs>
          <linearGradient id={gradientId} x1="0" x2="1" y1="0" y2="0">
            {stops.map((v, i) => (
              <stop key={i} offset={`${i * 10}%`} stopColor={p.legend.colour(v)} />
            ))}
          </linearGradient>
        </defs>
        {p.rows.map((r, i) => (
          <text key={`r${i}`} x={left - 6} y={top + i * p.cellHeight + p.cellHeight / 2} fontSize={Math.min(FONT, p.cellHeight)} textAnchor="end" dominantBaseline="central">
            <title>{name(r)}</title>
            {r.label}
          </text>
        ))}
        {p.cols.map((c, j) => {
          const x = left + j * p.cellWidth + p.cellWidth / 2;
          const y = top + gridH + 6;
          return (
            <text key={`c${j}`} x={x} y={y} fontSize={FONT} textAnchor={rotate ? 'end' : 'middle'} dominantBaseline="hanging" transform={rotate ? `rotate(-40 ${x} ${y})` : undefined}>
              <title>{name(c)}</title>
              {c.label}
            </text>
          );
        })}
        {p.values.map((row, i) =>
          row.map((v, j) => {
            const fill = v === null ? '#ffffff' : p.colour(v, i, j);
            return (
              <g key={`${i}-${j}`}>
                <rect x={left + j * p.cellWidth} y={top + i * p.cellHeight} width={p.cellWidth} height={p.cellHeight} fill={fill} stroke="#ffffff" strokeWidth={1}>
                  <title>{`${name(p.rows[i]!)} × ${name(p.cols[j]!)}: ${v === null ? 'not measured' : p.format(v)}`}</title>
                </rect>
                {showValues && v !== null && (
                  <text x={left + j * p.cellWidth + p.cellWidth / 2} y={top + i * p.cellHeight + p.cellHeight / 2} fontSize={FONT} textAnchor="middle" dominantBaseline="central" fill={textColourOn(fill)} pointerEvents="none">
                    {p.format(v)}
                  </text>
                )}
              </g>
            );
          }),
        )}
        {p.yTitle && (
          <text x={10} y={top + gridH / 2} fontSize={FONT} textAnchor="middle" transform={`rotate(-90 10 ${top + gridH / 2})`} fill="#5b6470">
            {p.yTitle}
          </text>
        )}
        {p.xTitle && (
          <text x={left + gridW / 2} y={xTitleY} fontSize={FONT} textAnchor="middle" fill="#5b6470">
            {p.xTitle}
          </text>
        )}
        <g aria-hidden="true">
          <text x={left} y={legendY + 2} fontSize={FONT} fill="#5b6470" dominantBaseline="hanging">
            {p.legend.title}
          </text>
          <rect x={left} y={legendY + 16} width={legendW} height={10} fill={`url(#${gradientId})`} stroke="#d8dde3" />
          {ticks.map((v) => (
            <text key={v} x={legendX(v)} y={legendY + 30} fontSize={10} textAnchor="middle" dominantBaseline="hanging">
              {p.format(v)}
            </text>
          ))}
        </g>
      </svg>
      {/* Wrapped: a table is as wide as its cells whatever its own width, so only a clipping block hides it from the
          layout (a bare sr-only table widened the page by its full width). */}
      <div className="sr-only">
        <table>
          <caption>{p.ariaLabel}</caption>
          <thead>
            <tr>
              <th scope="col" />
              {p.cols.map((c, j) => (
                <th key={j} scope="col">
                  {name(c)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {p.values.map((row, i) => (
              <tr key={i}>
                <th scope="row">{name(p.rows[i]!)}</th>
                {row.map((v, j) => (
                  <td key={j}>{v === null ? '–' : p.format(v)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
