/**
 * Per-layer scale curve of a coefficient: one point per residual block, dragged with the pointer (drag across the
 * plot to paint several blocks) or moved with the arrow keys. A filter picks which tensors the curve applies to
 * (attention, MLP...: one rule each, ahead of the curve for all other tensors); presets set a constant, a straight
 * line or the LiNeS ramp. Emits the setting exactly as the engine reads it (src/ui/charts/layerCurve.ts).
 */
import { useId, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { niceCeil } from '../charts/chartData';
import {
  curveOf,
  curvesFromSetting,
  filterLabel,
  hasOwnCurve,
  presetCurve,
  roundValue,
  sampleGradient,
  settingFromCurves,
  withCurve,
  withoutFilter,
  withPoint,
  type LayerCurves,
  type Preset,
} from '../charts/layerCurve';
import { MERGED_COLOUR, seriesColour } from '../palette';

export interface LayerCurveEditorProps {
  /** Residual blocks of the model (0 when its tensors have no numbered layers). */
  layers: number;
  /** The coefficient's current setting (number, per-layer list or filter rules). */
  value: unknown;
  onChange: (v: unknown) => void;
  /** Tensor-name filters offered besides "all tensors" (e.g. self_attn, mlp; see filtersFor). */
  filters: string[];
  /** Name of the coefficient, for labels. */
  name?: string;
  /** The parameter's default: what tensors matched by no rule get. */
  fallback?: number;
  /** Value range of the plot; by default 0 to a round number above the largest value. */
  range?: [number, number];
}

// Sized for the method panel (about 310 px wide), so the SVG's text is drawn near 1:1.
const W = 320;
const H = 200;
const M = { left: 48, right: 10, top: 16, bottom: 32 };
const PW = W - M.left - M.right;
const PH = H - M.top - M.bottom;
const STEP = 0.01;

type Filter = string | null;

export function LayerCurveEditor(p: LayerCurveEditorProps) {
  const uid = useId();
  const svgRef = useRef<SVGSVGElement>(null);
  const dragDomain = useRef<[number, number] | null>(null);
  const pointRefs = useRef<(SVGCircleElement | null)[]>([]);
  const [filter, setFilter] = useState<Filter>(null);
  const [focus, setFocus] = useState(0);
  const [preset, setPreset] = useState<Preset['kind']>('lines');
  const [a, setA] = useState('');
  const [b, setB] = useState('');
  const name = p.name ?? 'coefficient';
  const curves = p.layers > 0 ? curvesFromSetting(p.value, p.layers) : null;

  if (p.layers === 0) {
    return <p className="hint" data-testid="layer-curve-editor">This model has no numbered layers, so a per-layer curve has no effect: set {name} as one number.</p>;
  }
  if (!curves) {
    const start = typeof p.fallback === 'number' ? p.fallback : 0;
    return (
      <div className="curve-editor" data-testid="layer-curve-editor">
        <p className="hint">
          {name} is set per task or per tensor, which a curve over the layers cannot show.{' '}
          <button className="link" onClick={() => p.onChange(settingFromCurves({ all: sampleGradient(start, p.layers), filters: [] }))}>
            Replace with a per-layer curve
          </button>
        </p>
      </div>
    );
  }

  const L = p.layers;
  // The curve being edited; "all" without its own curve shows the default (or the first filter's curve) to start from.
  const fallbackCurve = p.fallback !== undefined ? sampleGradient(p.fallback, L) : (curves.filters[0]?.values ?? sampleGradient(0, L));
  const current = curveOf(curves, filter) ?? fallbackCurve;
  const others: { key: string; label: string; values: number[]; colour: string }[] = [];
  if (filter !== null && curves.all) others.push({ key: '*', label: 'all other tensors', values: curves.all, colour: MERGED_COLOUR });
  curves.filters.forEach((f, i) => f.filter !== filter && others.push({ key: f.filter, label: filterLabel(f.filter), values: f.values, colour: seriesColour(i) }));
  // A filter keeps its colour from its position among the rules; a new one gets the next colour.
  const colourOf = (f: Filter) => {
    if (f === null) return MERGED_COLOUR;
    const i = curves.filters.findIndex((x) => x.filter === f);
    return seriesColour(i < 0 ? curves.filters.length : i);
  };

  const all = [...current, ...others.flatMap((o) => o.values)];
  const autoDomain: [number, number] = p.range ?? [Math.min(0, ...all), niceCeil(Math.max(1, ...all))];
  const [lo, hi] = dragDomain.current ?? autoDomain;
  const x = (l: number) => M.left + (L > 1 ? (l / (L - 1)) * PW : PW / 2);
  const y = (v: number) => M.top + (1 - (v - lo) / (hi - lo)) * PH;
  const clamp = (v: number) => Math.min(hi, Math.max(lo, v));
  const path = (vs: number[]) => vs.map((v, l) => `${l ? 'L' : 'M'}${x(l).toFixed(1)},${y(v).toFixed(1)}`).join(' ');

  const emit = (c: LayerCurves) => p.onChange(settingFromCurves(c));
  const setValues = (vs: number[]) => emit(withCurve(curves, filter, vs));
  const setPoint = (l: number, v: number) => setValues(withPoint(current, l, clamp(v)));
  // A pixel is worth about (hi - lo) / 150: dragged values snap to a round step near that, so they read well.
  const dragStep = niceCeil((hi - lo) / 200);
  const dragTo = (l: number, v: number) => setPoint(l, Math.round(v / dragStep) * dragStep);

  const toPlot = (e: PointerEvent) => {
    const svg = svgRef.current!;
    const r = svg.getBoundingClientRect();
    const sx = ((e.clientX - r.left) / r.width) * W;
    const sy = ((e.clientY - r.top) / r.height) * H;
    const l = L > 1 ? Math.round(((sx - M.left) / PW) * (L - 1)) : 0;
    return { layer: Math.min(L - 1, Math.max(0, l)), value: lo + (1 - (sy - M.top) / PH) * (hi - lo) };
  };
  const onPointerDown = (e: PointerEvent<SVGSVGElement>) => {
    if (e.button !== 0) return;
    e.preventDefault();
    dragDomain.current = [lo, hi]; // the axis must not move under the pointer while values grow
    e.currentTarget.setPointerCapture(e.pointerId);
    const { layer, value } = toPlot(e);
    setFocus(layer);
    dragTo(layer, value);
  };
  const onPointerMove = (e: PointerEvent<SVGSVGElement>) => {
    if (!dragDomain.current) return;
    const { layer, value } = toPlot(e);
    setFocus(layer);
    dragTo(layer, value);
  };
  const endDrag = () => {
    dragDomain.current = null;
  };

  const moveFocus = (l: number) => {
    const t = Math.min(L - 1, Math.max(0, l));
    setFocus(t);
    pointRefs.current[t]?.focus();
  };
  const onKeyDown = (e: KeyboardEvent, l: number) => {
    const big = e.shiftKey ? 10 : 1;
    const v = current[l]!;
    const actions: Record<string, () => void> = {
      ArrowUp: () => setPoint(l, v + STEP * big),
      ArrowDown: () => setPoint(l, v - STEP * big),
      PageUp: () => setPoint(l, v + STEP * 10),
      PageDown: () => setPoint(l, v - STEP * 10),
      ArrowRight: () => moveFocus(l + 1),
      ArrowLeft: () => moveFocus(l - 1),
      Home: () => moveFocus(0),
      End: () => moveFocus(L - 1),
    };
    const act = actions[e.key];
    if (!act) return;
    e.preventDefault();
    act();
  };

  const presetFields: Record<Preset['kind'], [string, string | null]> = { constant: ['value', null], linear: ['first layer', 'last layer'], lines: ['α', 'β'] };
  const defaultsFor = (k: Preset['kind']): [number, number] => (k === 'lines' ? [current[0]!, roundValue(current[L - 1]! - current[0]!)] : [current[0]!, current[L - 1]!]);
  const [da, db] = defaultsFor(preset);
  const num = (s: string, d: number) => (s.trim() === '' || !Number.isFinite(Number(s)) ? d : Number(s));
  const applyPreset = () => {
    const [va, vb] = [num(a, da), num(b, db)];
    const ps: Preset = preset === 'constant' ? { kind: 'constant', value: va } : preset === 'linear' ? { kind: 'linear', from: va, to: vb } : { kind: 'lines', alpha: va, beta: vb };
    setValues(presetCurve(ps, L));
  };
  const ticks = Array.from({ length: 5 }, (_, i) => lo + ((hi - lo) * i) / 4);
  const showLabels = L <= 16;
  const selectId = `${uid}-filter`;
  const own = hasOwnCurve(curves, filter);

  return (
    <div className="curve-editor" data-testid="layer-curve-editor">
      <div className="curve-toolbar">
        <label htmlFor={selectId}>tensors</label>
        <select id={selectId} data-testid="curve-filter" value={filter ?? ''} onChange={(e) => setFilter(e.target.value === '' ? null : e.target.value)}>
          <option value="">{curves.filters.length ? 'all other tensors' : 'all tensors'}</option>
          {[...new Set([...curves.filters.map((f) => f.filter), ...p.filters])].map((f) => (
            <option key={f} value={f}>
              {filterLabel(f)}
              {hasOwnCurve(curves, f) ? '' : ' (same as all)'}
            </option>
          ))}
        </select>
        {filter !== null && own && (
          <button className="link" disabled={!curves.all && curves.filters.length === 1} onClick={() => emit(withoutFilter(curves, filter))}>
            remove this curve
          </button>
        )}
      </div>
      <svg
        ref={svgRef}
        viewBox={`0 0 ${W} ${H}`}
        className="curve-plot"
        role="group"
        aria-label={`${name} per layer for ${filter === null ? 'all tensors' : filterLabel(filter)}: drag points, or focus one and use the arrow keys`}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onPointerUp={endDrag}
        onPointerCancel={endDrag}
        onLostPointerCapture={endDrag}
      >
        <rect x={M.left} y={M.top} width={PW} height={PH} fill="#ffffff" stroke="#d8dde3" />
        {ticks.map((t) => (
          <g key={t}>
            <line x1={M.left} x2={M.left + PW} y1={y(t)} y2={y(t)} stroke="#eceff3" />
            <text x={M.left - 5} y={y(t)} fontSize={10} textAnchor="end" dominantBaseline="central">
              {Number(t.toPrecision(3))}
            </text>
          </g>
        ))}
        {lo < 0 && <line x1={M.left} x2={M.left + PW} y1={y(0)} y2={y(0)} stroke="#9aa3ad" />}
        {current.map((_, l) => (
          <text key={l} x={x(l)} y={M.top + PH + 12} fontSize={10} textAnchor="middle">
            {l}
          </text>
        ))}
        <text x={M.left + PW / 2} y={H - 4} fontSize={10} textAnchor="middle" fill="#5b6470">
          layer (block); non-block tensors use layer 0
        </text>
        <text x={10} y={M.top + PH / 2} fontSize={10} textAnchor="middle" fill="#5b6470" transform={`rotate(-90 10 ${M.top + PH / 2})`}>
          {name} (scale)
        </text>
        {others.map((o) => (
          <path key={o.key} d={path(o.values)} fill="none" stroke={o.colour} strokeWidth={1.5} strokeDasharray="5 4" opacity={0.7} pointerEvents="none" />
        ))}
        <path d={path(current)} fill="none" stroke={colourOf(filter)} strokeWidth={2.5} strokeDasharray={own ? undefined : '2 3'} pointerEvents="none" />
        {current.map((v, l) => (
          <g key={l}>
            <circle
              ref={(el) => void (pointRefs.current[l] = el)}
              cx={x(l)}
              cy={y(v)}
              r={6}
              className="curve-point"
              fill={l === focus ? colourOf(filter) : '#ffffff'}
              stroke={colourOf(filter)}
              strokeWidth={2}
              role="slider"
              tabIndex={l === focus ? 0 : -1}
              aria-label={`layer ${l}`}
              aria-valuemin={lo}
              aria-valuemax={hi}
              aria-valuenow={v}
              aria-valuetext={`layer ${l}: ${v}`}
              data-testid={`curve-point-${l}`}
              onFocus={() => setFocus(l)}
              onKeyDown={(e) => onKeyDown(e, l)}
            />
            {showLabels && (
              <text x={x(l)} y={y(v) - 11} fontSize={10} textAnchor="middle" pointerEvents="none">
                {Number(v.toFixed(3))}
              </text>
            )}
          </g>
        ))}
      </svg>
      {others.length > 0 && (
        <ul className="curve-legend" aria-label="other curves">
          {others.map((o) => (
            <li key={o.key}>
              <span className="swatch" style={{ background: o.colour }} aria-hidden /> {o.label}
            </li>
          ))}
        </ul>
      )}
      <div className="curve-presets">
        <label htmlFor={`${uid}-preset`}>preset</label>
        <select id={`${uid}-preset`} value={preset} onChange={(e) => setPreset(e.target.value as Preset['kind'])}>
          <option value="constant">constant</option>
          <option value="linear">linear gradient</option>
          <option value="lines">LiNeS: α + β · layer / (L − 1)</option>
        </select>
        <label>
          {presetFields[preset][0]} <input type="number" step={STEP} className="param-number" value={a} placeholder={String(da)} onChange={(e) => setA(e.target.value)} />
        </label>
        {presetFields[preset][1] && (
          <label>
            {presetFields[preset][1]} <input type="number" step={STEP} className="param-number" value={b} placeholder={String(db)} onChange={(e) => setB(e.target.value)} />
          </label>
        )}
        <button onClick={applyPreset} data-testid="curve-apply-preset">
          Apply
        </button>
      </div>
      <p className="hint">
        Setting sent to the merge: <code data-testid="curve-setting">{JSON.stringify(p.value)}</code>
      </p>
    </div>
  );
}
