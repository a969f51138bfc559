/**
 * FusionBench presets (src/engine/eval/fusionbench/): class and template counts per task as FusionBench and the
 * datasets define them, template placeholders, repo naming, and the published reference numbers.
 */
import { describe, expect, it } from 'vitest';
import { HUB_PRESETS, TA8_TASKS, hubPreset } from '../../src/engine/eval/fusionbench/presets';
import { fillTemplate } from '../../src/engine/eval/fusionbench/prompts';

describe('TA8 tasks', () => {
  it('have the class and template counts of FusionBench', () => {
    expect(TA8_TASKS.map((t) => [t.id, t.prompts.classes.length, t.prompts.templates.length])).toEqual([
      ['sun397', 397, 2],
      ['stanford-cars', 196, 8],
      ['resisc45', 45, 18],
      ['eurosat', 10, 3],
      ['svhn', 10, 1],
      ['gtsrb', 43, 3],
      ['mnist', 10, 1],
      ['dtd', 47, 8],
    ]);
  });

  it('have distinct class names and templates with exactly one {c}', () => {
    for (const t of TA8_TASKS) {
      expect(new Set(t.prompts.classes).size, t.id).toBe(t.prompts.classes.length);
      expect(new Set(t.prompts.templates).size, t.id).toBe(t.prompts.templates.length);
      for (const template of t.prompts.templates) expect(template.split('{c}').length, template).toBe(2);
    }
  });

  it('fill templates as FusionBench lambdas do', () => {
    const gtsrb = TA8_TASKS.find((t) => t.id === 'gtsrb')!;
    expect(fillTemplate(gtsrb.prompts.templates[0]!, gtsrb.prompts.classes[14]!)).toBe('a zoomed in photo of a "stop" traffic sign.');
    const resisc = TA8_TASKS.find((t) => t.id === 'resisc45')!;
    expect(resisc.prompts.templates.slice(0, 3)).toEqual(['satellite imagery of {c}.', 'aerial imagery of {c}.', 'satellite photo of {c}.']);
    expect(resisc.prompts.templates[17]).toBe('aerial view of the {c}.');
    const dtd = TA8_TASKS.find((t) => t.id === 'dtd')!;
    expect(dtd.prompts.templates[4]).toBe('a photo of the {c} texture.');
  });

  it('read test splits from the dataset repos FusionBench evaluates on', () => {
    expect(TA8_TASKS.map((t) => `${t.dataset.repo}:${t.dataset.filePrefix}`)).toEqual([
      'datasets/tanganke/sun397:data/test-',
      'datasets/tanganke/stanford_cars:data/test-',
      'datasets/tanganke/resisc45:data/test-',
      'datasets/tanganke/eurosat:data/test-',
      'datasets/ufldl-stanford/svhn:cropped_digits/test-',
      'datasets/tanganke/gtsrb:data/test-',
      'datasets/ylecun/mnist:mnist/test-',
      'datasets/tanganke/dtd:data/test-',
    ]);
  });
});

describe('presets', () => {
  it('cover B/32, B/16 and L/14 with tanganke model repos', () => {
    expect(HUB_PRESETS.map((p) => [p.id, p.base.repo, `${p.modelPrefix}${p.tasks[1]!.id}`])).toEqual([
      ['fusionbench-clip-vit-base-patch32-ta8', 'openai/clip-vit-base-patch32', 'tanganke/clip-vit-base-patch32_stanford-cars'],
      ['fusionbench-clip-vit-base-patch16-ta8', 'openai/clip-vit-base-patch16', 'tanganke/clip-vit-base-patch16_stanford-cars'],
      ['fusionbench-clip-vit-large-patch14-ta8', 'openai/clip-vit-large-patch14', 'tanganke/clip-vit-large-patch14_stanford-cars'],
    ]);
    expect(() => hubPreset('nope')).toThrow(/unknown suite preset "nope" \(known: fusionbench-clip-vit-base-patch32-ta8/);
  });

  it("carry FusionBench's published B/32 numbers: per-task averages match the reported averages", () => {
    const b32 = hubPreset('fusionbench-clip-vit-base-patch32-ta8');
    const mean = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0) / Object.values(r).length;
    expect(mean(b32.reference!.pretrained)).toBeCloseTo(b32.averages.pretrained!, 0);
    expect(mean(b32.reference!.finetuned)).toBeCloseTo(b32.averages.finetuned!, 0);
    expect(b32.averages.task_arithmetic).toBe(68.0);
    expect(b32.averages.ties_merging).toBe(72.2);
  });
});
