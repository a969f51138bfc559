/**
 * MagMax reference (methods.md section 2): per coordinate, the task-vector entry of largest magnitude wins, with
 * ">=" so a later model wins exact ties (FusionBench's running update). Contribution c_t is tau_t where t wins, else 0.
 */
import { mapModel, type RefModel } from '../refModel';
import { tensorOf, type Contributions } from './contributions';

/** Per-task contributions of MagMax at scale 1. */
export function magmaxContributions(taus: RefModel[]): Contributions {
  const out = taus.map((tau) => mapModel(tau, (_, d) => new Float64Array(d.length)));
  for (const name of taus[0]!.keys()) {
    const xs = taus.map((tau) => tensorOf(tau, name).data);
    const cs = out.map((c) => tensorOf(c, name).data);
    for (let j = 0; j < xs[0]!.length; j++) {
      let win = 0;
      for (let t = 1; t < xs.length; t++) if (Math.abs(xs[t]![j]!) >= Math.abs(xs[win]![j]!)) win = t;
      cs[win]![j] = xs[win]![j]!;
    }
  }
  return out;
}
