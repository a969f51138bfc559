/** Okabe-Ito colours: distinguishable for colour-blind readers. The merged model is drawn in black. */
export const SERIES_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#999999'];
export const MERGED_COLOUR = '#000000';
export const BASE_COLOUR = '#7f7f7f';

export function seriesColour(i: number): string {
  return SERIES_COLOURS[i % SERIES_COLOURS.length]!;
}
