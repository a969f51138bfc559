import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Builds the benchmark (bench/main.ts) for Node from the engine's sources, like the CLI (vite.cli.config.ts): the
// same shader loader, `webgpu` (Dawn) left external. Run from the repository root: `vite build --config bench/vite.bench.config.ts`.
const root = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root,
  build: {
    ssr: 'bench/main.ts',
    outDir: 'dist-bench',
    emptyOutDir: true,
    target: 'node20',
    sourcemap: true,
    // One file (bench/gpu-machine.sh carries it to the GPU machine): no chunks for the engine's lazy imports.
    rollupOptions: { output: { entryFileNames: 'bench.mjs', format: 'es', codeSplitting: false } },
  },
  ssr: { external: ['webgpu'], noExternal: true },
  publicDir: false,
  logLevel: 'warn',
});
