/**
 * Errors the engine raises for bad input. Each names what is at fault (a file, a tensor, a field) so that
 * the CLI can print it on one line and the page can show it as text.
 */

/** Invalid or unsupported input file (safetensors header, index, config.json). */
export class FormatError extends Error {
  override name = 'FormatError';
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}

/** Models that cannot be merged together (missing tensor, shape or dtype mismatch). */
export class AlignmentError extends Error {
  override name = 'AlignmentError';
  constructor(readonly tensor: string, message: string) {
    super(message);
  }
}

/** A bad method id, parameter name or parameter value. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

/** A failure reported by the GPU (validation, out of memory, device lost). */
export class GpuError extends Error {
  override name = 'GpuError';
  constructor(readonly kind: 'validation' | 'out-of-memory' | 'internal' | 'device-lost' | 'unavailable', message: string) {
    super(message);
  }
}

/** Work cancelled by the caller (an AbortSignal fired). */
export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

/**
 * A short preview of an untrusted value for error messages: at most `max` characters, and never a stack overflow
 * (JSON.stringify recurses, and JSON.parse accepts nesting far deeper than the stack).
 */
export function preview(v: unknown, max = 60): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(typeof v === 'string' && v.length > max ? v.slice(0, max) : v);
  } catch {
    s = Array.isArray(v) ? '[...]' : '{...}';
  }
  s ??= String(v);
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** Throws CancelledError if the signal has fired. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}
