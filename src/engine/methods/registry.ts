/** Every merging method by id: the single list the CLI, the page and share links read. */
import { ConfigError, preview } from '../errors';
import type { MethodSpec } from './params';
import { breadcrumbs } from './breadcrumbs';
import { consensus } from './consensus';
import { continualAverage } from './continualAverage';
import { continualMagmax } from './continualMagmax';
import { continualTaskArithmetic } from './continualTaskArithmetic';
import { continualTies } from './continualTies';
import { dare } from './dare';
import { lines } from './lines';
import { magmax } from './magmax';
import { modelStock } from './modelStock';
import { opcm } from './opcm';
import { simpleAverage } from './simpleAverage';
import { slerp } from './slerp';
import { tallMasks } from './tallMasks';
import { taskArithmetic } from './taskArithmetic';
import { ties } from './ties';

export const METHODS: readonly MethodSpec[] = [
  taskArithmetic,
  simpleAverage,
  ties,
  dare,
  breadcrumbs,
  consensus,
  tallMasks,
  lines,
  magmax,
  slerp,
  modelStock,
  opcm,
  continualTaskArithmetic,
  continualTies,
  continualAverage,
  continualMagmax,
];

/** The method with this id, or a ConfigError listing the ids there are. */
export function getMethod(id: string): MethodSpec {
  const m = METHODS.find((x) => x.id === id);
  if (!m) throw new ConfigError('method', `unknown method ${preview(id)} (allowed: ${METHODS.map((x) => x.id).join(', ')})`);
  return m;
}

/** Checks that a method accepts this many fine-tuned models. */
export function checkModelCount(m: MethodSpec, count: number): void {
  if (count < m.models.min || (m.models.max !== undefined && count > m.models.max)) {
    const want = m.models.max === undefined ? `at least ${m.models.min}` : m.models.min === m.models.max ? `exactly ${m.models.min}` : `${m.models.min} to ${m.models.max}`;
    throw new ConfigError('models', `method '${m.id}' needs ${want} fine-tuned models, got ${count}`);
  }
}
