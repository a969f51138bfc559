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
}

export type GpuStatus = { state: 'checking' } | { state: 'ready'; adapter: string; software: boolean } | { state: 'unavailable'; message: string };

export interface RunState {
  state: 'idle' | 'merging' | 'done' | 'error';
  /** 0..1 while merging. */
  progress: number;
  message: string | null;
}

/** Accuracies (%) by task id. */
export type TaskAccuracy = Record<string, number>;

/** The evaluation suite in use (the embedded demo by default) and the latest scores. */
export interface SuiteState {
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
}

export const initialState: AppState = {
  gpu: { state: 'checking' },
  base: null,
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
};

export const appStore = createStore<AppState>()(() => initialState);
