/** The merge that methods such as DARE, Consensus and LiNeS hand their task vectors to (their `then` parameter). */
import type { RefModel } from '../refModel';
import type { Contributions } from './contributions';
import { tiesContributions, type TiesSettings } from './ties';

/** Methods a task-vector transform can be followed by. */
export type ThenMethod = 'task_arithmetic' | 'ties';

/** Contributions of `then` at scale 1: the task vectors themselves (Task Arithmetic) or TIES' disjoint pieces. */
export function thenContributions(then: ThenMethod, taus: RefModel[], ties: TiesSettings): Contributions {
  return then === 'ties' ? tiesContributions(taus, ties) : taus;
}
