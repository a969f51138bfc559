#!/usr/bin/env node
// Entry point of the `merge-playground` command. The CLI is built from the engine's TypeScript sources by Vite
// (`npm install` runs the build); if the sources are newer than the build, it is rebuilt first.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist-cli', 'cli.mjs');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const sources = ['src/engine', 'src/platform', 'src/cli', 'shaders'].map((d) => join(root, d)).filter(existsSync);
const stale = !existsSync(built) || Math.max(...sources.map(newestMtime)) > statSync(built).mtimeMs;
if (stale) {
  process.stderr.write('merge-playground: building the command line from sources...\n');
  const { build } = await import('vite');
  await build({ configFile: join(root, 'vite.cli.config.ts'), root, logLevel: 'warn' });
}
const { main } = await import(pathToFileURL(built).href);
process.exitCode = await main(process.argv.slice(2));
