/**
 * The application state (zustand, vanilla: usable without React). Only serialisable data lives here; File objects,
 * GPU devices and buffers stay in src/app/actions.ts and the engine.
 */
import { createStore } from 'zustand/vanilla';
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

export interface AppState {
  gpu: GpuStatus;
  base: ModelEntry | null;
  models: ModelEntry[];
  method: string;
  params: Record<string, unknown>;
  outputDtype: 'base' | 'F32' | 'F16' | 'BF16';
  run: RunState;
  report: MergeReport | null;
  /** The merged file(s), once made: object URLs and names (TALL masks make one per task). */
  outputs: { url: string; name: string; bytes: number }[];
  /** Last problem with the user's input (shown as text, never as HTML). */
  inputError: string | null;
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
  outputs: [],
  inputError: null,
};

export const appStore = createStore<AppState>()(() => initialState);
