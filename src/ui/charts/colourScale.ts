/**
 * Colour scales for the heatmaps, built from Okabe-Ito hues so that colour-blind readers can tell the ends apart:
 * diverging blue - white - orange for signed values (cosines), white to one hue for magnitudes (rank, energy).
 */

export const NEGATIVE_HUE = '#0072B2'; // Okabe-Ito blue
export const POSITIVE_HUE = '#D55E00'; // Okabe-Ito vermillion (orange-red): stays distinct from blue under every common deficiency
export const MISSING_FILL = '#eef0f3';

type Rgb = [number, number, number];

function parseHex(hex: string): Rgb {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new Error(`not a #rrggbb colour: ${hex}`);
  const n = parseInt(m[1]!, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

const toHex = (c: Rgb) => `#${c.map((x) => Math.round(Math.min(255, Math.max(0, x))).toString(16).padStart(2, '0')).join('')}`;

/** Mix of white and `hue` with weight f in [0, 1] (0 = white). */
export function tint(hue: string, f: number): string {
  const c = parseHex(hue);
  const w = Math.min(1, Math.max(0, f));
  return toHex(c.map((x) => 255 + (x - 255) * w) as Rgb);
}

/** Diverging colour of v on [-limit, limit]: blue below 0, white at 0, orange-red above; clamped at the ends. */
export function divergingColour(v: number, limit: number): string {
  if (!Number.isFinite(v)) return MISSING_FILL;
  const f = limit > 0 ? v / limit : 0;
  return f < 0 ? tint(NEGATIVE_HUE, -f) : tint(POSITIVE_HUE, f);
}

/** Sequential colour of v on [lo, hi]: white at lo, `hue` at hi. */
export function sequentialColour(v: number, lo: number, hi: number, hue: string): string {
  if (!Number.isFinite(v)) return MISSING_FILL;
  return tint(hue, hi > lo ? (v - lo) / (hi - lo) : 0);
}

/** Black or white, whichever reads better on `fill` (WCAG relative luminance). */
export function textColourOn(fill: string): string {
  const lin = parseHex(fill).map((x) => {
    const s = x / 255;
    return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  });
  const l = 0.2126 * lin[0]! + 0.7152 * lin[1]! + 0.0722 * lin[2]!;
  // Contrast with black (l + 0.05) / 0.05 against white 1.05 / (l + 0.05): equal at l ~ 0.179.
  return l > 0.179 ? '#000000' : '#ffffff';
}
