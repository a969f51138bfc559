/**
 * Long host computations written as generators that yield between rows of work, so that one body serves both a
 * caller that wants the result now (runSteps: tests, references) and one that must keep its thread responsive
 * (runStepsYielding: the page runs the engine on its main thread, where a 768 x 768 host SVD is about 2 s of work).
 */
import { throwIfAborted } from '../errors';

export type Steps<T> = Generator<void, T, void>;

/** Runs the steps to their end and returns the result. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs the steps, giving the event loop a turn after every `sliceMs` of work, and stopping with CancelledError at the
 * first turn after `signal` fires. The turn is a message to itself on a MessageChannel (in browsers and Node), which
 * background tabs do not throttle as they do timers.
 */
export async function runStepsYielding<T>(steps: Steps<T>, sliceMs = 25, signal?: AbortSignal): Promise<T> {
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start >= sliceMs) {
      await nextTurn();
      throwIfAborted(signal);
      start = performance.now();
    }
  }
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
