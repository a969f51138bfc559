/**
 * FusionBench presets (src/engine/eval/fusionbench/): class and template counts per task as FusionBench and the
 * datasets define them, template placeholders, the TA8 / TALL14 / TALL20 task order, repo naming, and the published
 * reference numbers.
 */
import { describe, expect, it } from 'vitest';
import { HUB_PRESETS, TA8_TASKS, TALL14_TASKS, TALL20_TASKS, hubPreset } from '../../src/engine/eval/fusionbench/presets';
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

describe('TALL14 and TALL20 tasks', () => {
  const added14 = ['oxford_flowers102', 'pcam', 'fer2013', 'oxford-iiit-pet', 'stl10', 'cifar100'];
  const added20 = ['cifar10', 'food101', 'fashion_mnist', 'emnist_letters', 'kmnist', 'rendered-sst2'];

  it("extend TA8 in FusionBench's TALL20 order", () => {
    expect(TALL14_TASKS.slice(0, 8)).toEqual(TA8_TASKS);
    expect(TALL14_TASKS.slice(8).map((t) => t.id)).toEqual(added14);
    expect(TALL20_TASKS.slice(0, 14)).toEqual(TALL14_TASKS);
    expect(TALL20_TASKS.slice(14).map((t) => t.id)).toEqual(added20);
  });

  it("have the datasets' class counts and FusionBench's template counts", () => {
    expect(TALL20_TASKS.slice(8).map((t) => [t.id, t.prompts.classes.length, t.prompts.templates.length])).toEqual([
      ['oxford_flowers102', 102, 1],
      ['pcam', 2, 1],
      ['fer2013', 7, 6],
      ['oxford-iiit-pet', 37, 1],
      ['stl10', 10, 2],
      ['cifar100', 100, 18],
      ['cifar10', 10, 18],
      ['food101', 101, 1],
      ['fashion_mnist', 10, 2],
      ['emnist_letters', 26, 1],
      ['kmnist', 10, 1],
      ['rendered-sst2', 2, 1],
    ]);
  });

  it('fill templates with the strings of FusionBench, quirks included', () => {
    const task = (id: string) => TALL20_TASKS.find((t) => t.id === id)!.prompts;
    const fill = (id: string, template: number, cls: number) => fillTemplate(task(id).templates[template]!, task(id).classes[cls]!);
    expect(fill('oxford_flowers102', 0, 59)).toBe('a photo of a pink-yellow dahlia?, a type of flower.');
    expect(fill('pcam', 0, 1)).toBe('this is a photo of lymph node containing metastatic tumor tissue');
    expect(fill('fer2013', 1, 3)).toBe('a photo of a face showing the emotion: happy.');
    expect(fill('oxford-iiit-pet', 0, 36)).toBe('a photo of a yorkshire_terrier, a type of pet.');
    expect(fill('cifar100', 17, 26)).toBe('a photo of the big cra.');
    expect(fill('cifar10', 2, 1)).toBe('a black and white photo of a automobile.');
    expect(fill('food101', 0, 100)).toBe('a photo of waffles, a type of food.');
    expect(fill('fashion_mnist', 1, 0)).toBe('a photo of the T - shirt / top.');
    expect(fill('emnist_letters', 0, 25)).toBe('a photo of the digit character: "Z".');
    expect(fill('kmnist', 0, 9)).toBe('a photo of the character を.');
    expect(fill('rendered-sst2', 0, 0)).toBe('a negative review of a movie.');
    expect(task('cifar10').templates).toEqual(task('cifar100').templates);
  });

  it('read the dataset repos, splits and columns FusionBench evaluates on', () => {
    expect(TALL20_TASKS.slice(8).map((t) => [t.id, t.dataset.repo, t.dataset.revision, t.dataset.filePrefix, t.dataset.imageColumn, t.dataset.labelColumn, t.dataset.split ?? 'test'])).toEqual([
      ['oxford_flowers102', 'datasets/dpdl-benchmark/oxford_flowers102', 'main', 'data/test-', 'image', 'label', 'test'],
      ['pcam', 'datasets/1aurent/PatchCamelyon', 'main', 'data/test-', 'image', 'label', 'test'],
      ['fer2013', 'datasets/clip-benchmark/wds_fer2013', 'refs/convert/parquet', 'default/test/', 'jpg', 'cls', 'test'],
      ['oxford-iiit-pet', 'datasets/timm/oxford-iiit-pet', 'main', 'data/test-', 'image', 'label', 'test'],
      ['stl10', 'datasets/tanganke/stl10', 'main', 'data/test-', 'image', 'label', 'test'],
      ['cifar100', 'datasets/tanganke/cifar100', 'main', 'data/test-', 'image', 'label', 'test'],
      ['cifar10', 'datasets/tanganke/cifar10', 'main', 'data/test-', 'image', 'label', 'test'],
      ['food101', 'datasets/ethz/food101', 'main', 'data/validation-', 'image', 'label', 'validation'],
      ['fashion_mnist', 'datasets/zalando-datasets/fashion_mnist', 'main', 'fashion_mnist/test-', 'image', 'label', 'test'],
      ['emnist_letters', 'datasets/tanganke/emnist_letters', 'main', 'data/test-', 'image', 'label', 'test'],
      ['kmnist', 'datasets/tanganke/kmnist', 'main', 'data/test-', 'image', 'label', 'test'],
      ['rendered-sst2', 'datasets/nateraw/rendered-sst2', 'refs/convert/parquet', 'default/test/', 'image', 'label', 'test'],
    ]);
  });
});

describe('presets', () => {
  const backbones = ['clip-vit-base-patch32', 'clip-vit-base-patch16', 'clip-vit-large-patch14'];

  it('cover TA8, TALL14 and TALL20 for B/32, B/16 and L/14 with tanganke model repos', () => {
    expect(HUB_PRESETS.map((p) => [p.id, p.base.repo, p.tasks.length])).toEqual(
      backbones.flatMap((b) => [
        [`fusionbench-${b}-ta8`, `openai/${b}`, 8],
        [`fusionbench-${b}-tall14`, `openai/${b}`, 14],
        [`fusionbench-${b}-tall20`, `openai/${b}`, 20],
      ]),
    );
    expect(HUB_PRESETS.map((p) => p.title).slice(0, 3)).toEqual([
      'FusionBench CLIP-ViT-B/32, 8 tasks',
      'FusionBench CLIP-ViT-B/32, TALL14, 14 tasks',
      'FusionBench CLIP-ViT-B/32, TALL20, 20 tasks',
    ]);
    const tall20 = hubPreset('fusionbench-clip-vit-large-patch14-tall20');
    expect(tall20.tasks.map((t) => `${tall20.modelPrefix}${t.id}`).slice(8, 12)).toEqual([
      'tanganke/clip-vit-large-patch14_oxford_flowers102',
      'tanganke/clip-vit-large-patch14_pcam',
      'tanganke/clip-vit-large-patch14_fer2013',
      'tanganke/clip-vit-large-patch14_oxford-iiit-pet',
    ]);
    expect(`${tall20.modelPrefix}${tall20.tasks[19]!.id}`).toBe('tanganke/clip-vit-large-patch14_rendered-sst2');
    expect(`${HUB_PRESETS[0]!.modelPrefix}${HUB_PRESETS[0]!.tasks[1]!.id}`).toBe('tanganke/clip-vit-base-patch32_stanford-cars');
    expect(() => hubPreset('nope')).toThrow(/unknown suite preset "nope" \(known: fusionbench-clip-vit-base-patch32-ta8, fusionbench-clip-vit-base-patch32-tall14/);
  });

  it('have tasks with distinct ids, distinct nonempty classes and templates with exactly one {c}', () => {
    for (const p of HUB_PRESETS) {
      expect(new Set(p.tasks.map((t) => t.id)).size, p.id).toBe(p.tasks.length);
      for (const t of p.tasks) {
        expect(t.prompts.classes.length, t.id).toBeGreaterThan(1);
        expect(new Set(t.prompts.classes).size, t.id).toBe(t.prompts.classes.length);
        for (const c of t.prompts.classes) expect(c.trim(), t.id).not.toBe('');
        expect(t.prompts.templates.length, t.id).toBeGreaterThan(0);
        expect(new Set(t.prompts.templates).size, t.id).toBe(t.prompts.templates.length);
        for (const template of t.prompts.templates) expect(template.split('{c}').length, template).toBe(2);
      }
    }
  });

  it("carry FusionBench's published B/32 numbers: per-task averages match the reported averages", () => {
    const b32 = hubPreset('fusionbench-clip-vit-base-patch32-ta8');
    const mean = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0) / Object.values(r).length;
    expect(mean(b32.reference!.pretrained)).toBeCloseTo(b32.averages.pretrained!, 0);
    expect(mean(b32.reference!.finetuned)).toBeCloseTo(b32.averages.finetuned!, 0);
    expect(b32.averages.task_arithmetic).toBe(68.0);
    expect(b32.averages.ties_merging).toBe(72.2);
    // The TALL14 / TALL20 averages are the means of the same per-task table, to two decimals.
    for (const suite of ['tall14', 'tall20']) {
      const p = hubPreset(`fusionbench-clip-vit-base-patch32-${suite}`);
      expect(Object.keys(p.reference!.pretrained), suite).toEqual(p.tasks.map((t) => t.id));
      expect(Object.keys(p.reference!.finetuned), suite).toEqual(p.tasks.map((t) => t.id));
      expect(mean(p.reference!.pretrained)).toBeCloseTo(p.averages.pretrained!, 2);
      expect(mean(p.reference!.finetuned)).toBeCloseTo(p.averages.finetuned!, 2);
    }
  });

  it('carry the pretrained and fine-tuned averages over 14 and 20 tasks, and no method averages there', () => {
    const averages = (id: string) => hubPreset(id).averages;
    expect(backbones.flatMap((b) => [averages(`fusionbench-${b}-tall14`), averages(`fusionbench-${b}-tall20`)])).toEqual([
      { pretrained: 56.94, finetuned: 89.25 },
      { pretrained: 55.65, finetuned: 89.77 },
      { pretrained: 61.97, finetuned: 91.33 },
      { pretrained: 59.85, finetuned: 91.62 },
      { pretrained: 69.1, finetuned: 93.37 },
      { pretrained: 65.61, finetuned: 93.52 },
    ]);
    expect(hubPreset('fusionbench-clip-vit-base-patch16-tall20').reference).toBeNull();
    expect(hubPreset('fusionbench-clip-vit-large-patch14-tall14').reference).toBeNull();
  });
});
