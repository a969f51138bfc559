/**
 * The application state (zustand, vanilla: usable without React). Only serialisable data lives here; File objects,
 * GPU devices and buffers stay in src/app/actions.ts and the engine.
 */
import { createStore } from 'zustand/vanilla';
import type { ContinualReport } from '../engine/merge/continual';
import type { MergeReport } from '../engine/merge/report';

/** A model the user picked: one safetensors file, or a sharded set. */
export interface ModelEntry {
  id: string;
  name: string;
  bytes: number;
  tensors: number;
  /** Included in the merge (a model toggled out stays listed and is still evaluated on its task). */
  enabled: boolean;
  /** Where it came from, as share links write it: demo:ID, local:NAME or a Hub id org/name@revision. */
  source: string;
}

export type GpuStatus = { state: 'checking' } | { state: 'ready'; adapter: string; software: boolean } | { state: 'unavailable'; message: string };

export interface RunState {
  state: 'idle' | 'merging' | 'done' | 'error';
  /** 0..1 while merging. */
  progress: number;
  message: string | null;
  /** When the current work started (ms since the epoch), for the time-left estimate. */
  startedAt?: number;
}

/** Long background work (a lambda sweep, the continual comparison): progress and a time-left estimate. */
export interface JobState {
  state: 'idle' | 'running' | 'done' | 'error' | 'cancelled';
  progress: number;
  message: string | null;
  startedAt: number | null;
}

/** The tabs of the results area. */
export const CHART_TABS = ['accuracy', 'sweep', 'interference', 'continual', 'opcm'] as const;
export type ChartTab = (typeof CHART_TABS)[number];

/** What the user looks at; part of a share link. */
export interface ViewState {
  tab: ChartTab;
  normalized: boolean;
  /** The parameter the Sweep tab varies: "main" (the method's main coefficient) or a parameter name. */
  sweep: string;
}

/** Images per task: while a slider moves, and once it rests ('all' = the whole test set). */
export interface EvalSettings {
  liveSamples: number;
  settledSamples: number | 'all';
  seed: number;
}

/** Average accuracy as a function of one coefficient, computed on the GPU. */
export interface SweepState {
  param: string;
  /** The config the sweep belongs to, minus the swept parameter (stale sweeps are recomputed). */
  key: string;
  points: { value: number; average: number; perTask: TaskAccuracy }[];
  values: number[];
  samples: number;
}

/** Accuracy after every step of several continual methods over several seeded orders. */
export interface ContinualRunsState {
  key: string;
  samples: number;
  /** Task ids: the columns of every accuracy matrix. */
  tasks: string[];
  /** acc[step][task] (%), null where a task was not yet merged; final average and backward transfer per order. */
  methods: { id: string; label: string; orders: { order: number[]; acc: (number | null)[][]; finalAverage: number | null; bwt: number | null }[] }[];
}

/** Accuracies (%) by task id. */
export type TaskAccuracy = Record<string, number>;

/** The evaluation suite in use (the embedded demo by default) and the latest scores. */
export interface SuiteState {
  /** 'demo', or the id of a FusionBench preset from the Hub. */
  id: string;
  name: string;
  tasks: { id: string; title: string; description: string; classes: string[] }[];
  /** Images per task of the live evaluation. */
  samples: number;
  base: TaskAccuracy | null;
  individual: TaskAccuracy | null;
  merged: TaskAccuracy | null;
  /** The config the merged scores belong to (method id and parameters), to show stale results honestly. */
  mergedFor: string | null;
  state: 'loading' | 'ready' | 'error';
  message: string | null;
}

export interface AppState {
  gpu: GpuStatus;
  base: ModelEntry | null;
  /** The base model's tensor names (what per-layer settings and filters apply to). */
  baseTensors: string[];
  models: ModelEntry[];
  method: string;
  params: Record<string, unknown>;
  outputDtype: 'base' | 'F32' | 'F16' | 'BF16';
  run: RunState;
  report: MergeReport | null;
  /** The per-step report of a continual merge (OPCM and the continual baselines). */
  continual: ContinualReport | null;
  /** The merged file(s), once made: object URLs and names (TALL masks make one per task). */
  outputs: { url: string; name: string; bytes: number }[];
  /** Last problem with the user's input (shown as text, never as HTML). */
  inputError: string | null;
  suite: SuiteState | null;
  view: ViewState;
  evaluation: EvalSettings;
  /** Background work of the Sweep and Continual tabs. */
  jobs: { sweep: JobState; continual: JobState };
  sweep: SweepState | null;
  continualRuns: ContinualRunsState | null;
  /** What was wrong with the link the page was opened with (the page fell back to defaults where it could). */
  linkError: string | null;
}

export const initialState: AppState = {
  gpu: { state: 'checking' },
  base: null,
  baseTensors: [],
  models: [],
  method: 'task_arithmetic',
  params: {},
  outputDtype: 'base',
  run: { state: 'idle', progress: 0, message: null },
  report: null,
  continual: null,
  outputs: [],
  inputError: null,
  suite: null,
  view: { tab: 'accuracy', normalized: false, sweep: 'main' },
  evaluation: { liveSamples: 32, settledSamples: 'all', seed: 0 },
  jobs: { sweep: { state: 'idle', progress: 0, message: null, startedAt: null }, continual: { state: 'idle', progress: 0, message: null, startedAt: null } },
  sweep: null,
  continualRuns: null,
  linkError: null,
};

export const appStore = createStore<AppState>()(() => initialState);
