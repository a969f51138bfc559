/** Small formatting helpers for the UI. */

/** Bytes as B/KB/MB/GB with 3 significant digits. */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toPrecision(3)} ${units[i]}`;
}

/** A tensor name shortened for an axis label: drops common prefixes such as `vision_model.encoder.`. */
export function shortTensorName(name: string): string {
  return name.replace(/^(vision_model|text_model|model)\./, '').replace(/^encoder\./, '').replace(/\.weight$/, '.w').replace(/\.bias$/, '.b');
}
