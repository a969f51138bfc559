/** Command-line options of `npm run bench` (after `--`) and of bench/gpu-machine.sh. */

/** Parsed options. */
export interface BenchArgs {
  /** Profile name; null picks `swiftshader` on a software adapter and `gpu` otherwise. */
  profile: string | null;
  /** Folder that receives <date>-<adapter>.json/.md and latest.md. */
  out: string;
  /** Interpreters tried in order for PyTorch (the first that imports torch is used). */
  python: string[];
  torchScript: string;
  torch: boolean;
  /** Fail unless the adapter is a hardware GPU (the GPU machine's script). */
  requireHardware: boolean;
  /** Overrides the profile's time budget, in minutes. */
  budgetMinutes: number | null;
  /** Re-render the summary of this results JSON (next to it) instead of measuring. */
  render: string | null;
  help: boolean;
}

export const USAGE = `npm run bench [-- options]   (or: node dist-bench/bench.mjs [options])

  --profile NAME       swiftshader | full-size | full-size-opcm | gpu | gpu-merges | gpu-matrix | gpu-opcm | gpu-stack | smoke (default: swiftshader on a software adapter, else gpu)
  --out DIR            where results go (default bench/results)
  --python PATH        interpreter with torch (default: python3 on PATH, then /usr/bin/python3)
  --torch-script PATH  the PyTorch baseline (default bench/torch_merge.py)
  --no-torch           skip the PyTorch baseline
  --budget-min N       stop starting new workloads after N minutes (default: the profile's)
  --require-hardware   exit with an error on a software adapter (SwiftShader, llvmpipe)
  --render FILE.json   measure nothing: rewrite the summary (.md, and latest.md) of a results file
  --help`;

/** Parses argv (without node and the script); throws an Error naming the bad argument. */
export function parseArgs(argv: readonly string[]): BenchArgs {
  const a: BenchArgs = {
    profile: null,
    out: 'bench/results',
    python: ['python3', '/usr/bin/python3'],
    torchScript: 'bench/torch_merge.py',
    torch: true,
    requireHardware: false,
    budgetMinutes: null,
    render: null,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--profile') a.profile = value();
    else if (arg === '--out') a.out = value();
    else if (arg === '--python') a.python = [value()];
    else if (arg === '--torch-script') a.torchScript = value();
    else if (arg === '--no-torch') a.torch = false;
    else if (arg === '--require-hardware') a.requireHardware = true;
    else if (arg === '--budget-min') {
      const v = value();
      const n = Number(v);
      if (!(n > 0)) throw new Error(`--budget-min must be a positive number of minutes, got ${JSON.stringify(v)}`);
      a.budgetMinutes = n;
    } else if (arg === '--render') a.render = value();
    else if (arg === '--help' || arg === '-h') a.help = true;
    else throw new Error(`unknown argument ${JSON.stringify(arg)} (see --help)`);
  }
  return a;
}
