import { defineConfig } from 'vite';

// Builds the Node command line from the same engine sources (and the same shader loader) as the page.
export default defineConfig({
  build: {
    ssr: 'src/cli/main.ts',
    outDir: 'dist-cli',
    emptyOutDir: true,
    target: 'node20',
    sourcemap: true,
    // One file: the page loads the Hub client and the Hub suites' readers lazily, the command line has no first load to
    // spare.
    rollupOptions: { output: { entryFileNames: 'cli.mjs', format: 'es', codeSplitting: false } },
  },
  ssr: { external: ['webgpu'], noExternal: true },
  publicDir: false,
  logLevel: 'warn',
});
