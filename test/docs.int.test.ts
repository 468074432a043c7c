import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../src/http/serve.ts';
import { testApp } from './support/app.ts';
import { createTestDatabase, engine, type TestDatabase } from './support/db.ts';

// Debian's chromium (installed by ./voxtrace test); never a downloaded browser
const CHROMIUM = process.env.VOXTRACE_CHROMIUM ?? '/usr/bin/chromium';

let database: TestDatabase;
let server: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  database = await createTestDatabase();
  server = await listen(testApp(database.db), {
    host: '127.0.0.1',
    port: 0,
  });
});
afterAll(async () => {
  await server?.close();
  await database?.close();
});

describe(`/docs in headless Chromium on ${engine}`, () => {
  it('shows the getRecording operation with every request to another host blocked (none made)', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const context = await browser.newContext();
      const blocked: string[] = [];
      const local: string[] = [];
      await context.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.hostname === '127.0.0.1') {
          local.push(url.pathname);
          return route.continue();
        }
        blocked.push(url.href);
        return route.abort('blockedbyclient');
      });
      const page = await context.newPage();
      await page.goto(`${server.url}/docs`);
      const summary = page.getByText('Get a recording with its utterances and voiceprints');
      await summary.waitFor({ state: 'visible', timeout: 30_000 });
      expect(await page.getByText('getRecording', { exact: true }).count()).toBeGreaterThan(0);
      await summary.click(); // expands the operation: its parameters render from /openapi.json
      await page.getByText('include', { exact: true }).first().waitFor({ timeout: 10_000 });
      expect(local).toEqual(expect.arrayContaining(['/docs', '/docs/assets/swagger-ui-bundle.js', '/openapi.json']));
      expect(blocked).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
