/** Builds the command line once before the GPU tests, so tests that spawn it never race to rebuild it. */
import { build } from 'vite';

export default async function setup(): Promise<void> {
  await build({ configFile: 'vite.cli.config.ts', logLevel: 'warn' });
}
