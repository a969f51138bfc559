/**
 * `npm run bench`: runs the benchmark suite on this machine's WebGPU adapter (Dawn in Node; SwiftShader when there is
 * no GPU) and writes bench/results/<date>-<adapter>.json (machine-readable), the same name .md (summary) and latest.md.
 * Exit codes: 0 done, 1 a failure, 2 bad usage.
 */
import { GpuContext } from '../src/engine/gpu/device';
import { nodeGpu } from '../src/platform/nodeGpu';
import { parseArgs, USAGE } from './args';
import { profileNamed } from './profiles';
import type { BenchResults } from './results';
import { runSuite } from './suite';
import { defaultProfile, renderResults, writeResults } from './output';

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  if (args.render) {
    for (const path of await renderResults(args.render)) log(`bench: wrote ${path}`);
    return 0;
  }
  const gpu = await nodeGpu({ log });
  const ctx = await GpuContext.create(gpu, { label: 'merge-playground bench' });
  try {
    log(`bench: adapter ${ctx.info.adapter}${ctx.info.isSoftware ? ' (software)' : ''}`);
    if (args.requireHardware && ctx.info.isSoftware) throw new Error(`--require-hardware: the adapter is a software one (${ctx.info.adapter})`);
    const profile = { ...profileNamed(args.profile ?? defaultProfile(ctx.info.isSoftware)) };
    if (args.budgetMinutes !== null) profile.budgetMs = args.budgetMinutes * 60_000;
    // Each snapshot overwrites the last one (atomically), and the finished results overwrite them all.
    const checkpoint = async (snapshot: BenchResults) => void (await writeResults(args.out, snapshot));
    const results = await runSuite(ctx, { profile, python: args.torch ? args.python : null, torchScript: args.torchScript, log, checkpoint });
    for (const path of await writeResults(args.out, results)) log(`bench: wrote ${path}`);
    return 0;
  } finally {
    ctx.destroy();
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`bench: error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
