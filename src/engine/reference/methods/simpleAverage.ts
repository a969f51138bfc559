/** Simple average reference (methods.md section 10): theta = (1/T) sum_t theta_t. */
import { mapModel, type RefModel } from '../refModel';
import { tensorOf } from './contributions';

/** Weight-by-weight mean of the fine-tuned models (the base only supplies the tensor list). */
export function simpleAverageRef(base: RefModel, models: RefModel[]): RefModel {
  return mapModel(base, (name, b) => {
    const out = new Float64Array(b.length);
    for (const m of models) tensorOf(m, name).data.forEach((x, i) => { out[i]! += x; });
    return out.map((x) => x / models.length);
  });
}
