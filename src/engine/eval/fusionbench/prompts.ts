/**
 * A zero-shot classification task's text: its class names in label order and the prompt templates, each with `{c}`
 * where the class name goes (FusionBench's lambdas, written as data).
 */
export interface TaskPrompts {
  readonly classes: readonly string[];
  readonly templates: readonly string[];
}

/** Template `template` filled with class name `name`. */
export function fillTemplate(template: string, name: string): string {
  return template.replaceAll('{c}', name);
}
