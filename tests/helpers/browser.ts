/** Headless Debian Chromium with WebGPU (SwiftShader when there is no GPU), driven by playwright-core. */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].filter((p): p is string => !!p);

/** Launches Chromium with WebGPU enabled; throws a clear error if Debian's chromium is not installed. */
export async function launchBrowser(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  const executablePath = CANDIDATES.find((p) => existsSync(p));
  if (!executablePath) throw new Error('Chromium not found: install Debian\'s chromium (apt-get install -y chromium) or set CHROMIUM_PATH');
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', ...(opts.webgpu === false ? ['--disable-features=WebGPU'] : ['--enable-unsafe-webgpu']), '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
