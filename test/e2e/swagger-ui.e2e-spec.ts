/**
 * Swagger UI in a real browser (Debian's Chromium, driven by playwright-core) against a three-node cluster:
 * the page loads on every node, and "Try it out" on a follower's page works although the follower answers
 * 307 to the leader, another origin: the browser follows the redirect only with the leader's CORS consent
 * (preflight included, for the PUT's JSON body), which the members' pages get (apps/kv-node/src/cors.ts).
 *
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it) or CHROMIUM_PATH: without it the
 * suite fails, saying so.
 */
import { existsSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Browser, chromium, Locator, Page, Request } from 'playwright-core';
import { ClusterNode, eventually, http, LocalCluster } from '../support/local-cluster';

jest.setTimeout(90_000);

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** Generous: the machine may be loaded, and the first page load compiles Swagger UI's bundle. */
const UI_TIMEOUT_MS = 30_000;

let cluster: LocalCluster | undefined;
let browser: Browser | undefined;
let leader: ClusterNode;
let follower: ClusterNode;
/** The other follower, whose page is opened at http://localhost:<port> while the members are named 127.0.0.1. */
let aliasFollower: ClusterNode;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: this suite drives a real browser. Install Debian's package ` +
        '(`apt-get install chromium`, as .ci/run does) or point CHROMIUM_PATH at a Chromium binary.',
    );
  }
  // A longer election timeout than the helper's default: a leader change mid-test would turn the follower
  // whose page is open into the leader, and no redirect would be tested.
  cluster = await LocalCluster.start({ nodes: 3, env: { HEARTBEAT_INTERVAL_MS: '100', ELECTION_TIMEOUT_MS: '1500' } });
  // The browser starts while the nodes elect their leader.
  [browser, leader] = await Promise.all([chromium.launch({ executablePath: CHROMIUM, timeout: UI_TIMEOUT_MS }), cluster.waitForLeader(30_000)]);
  [follower, aliasFollower] = cluster.nodes.filter((n) => n !== leader);
});

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
});

/** A page in a context of its own (no cache, no cookies), and what closes both. */
async function freshPage(): Promise<{ page: Page; close: () => Promise<void> }> {
  const context = await browser!.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  return { page, close: () => context.close() };
}

/**
 * A fresh page (freshPage) on `origin`'s Swagger UI, with what it asked of the
 * network recorded, once the API is listed. Each test opens the page it uses and closes it: one window at a
 * time, in front, as a user has it.
 */
async function openDocs(origin: string): Promise<{ page: Page; finished: Request[]; close: () => Promise<void> }> {
  const { page, close } = await freshPage();
  const finished: Request[] = [];
  page.on('requestfinished', (request) => finished.push(request));
  await page.bringToFront();
  // Swagger UI renders from its script: no need to wait for the load event (images, favicons).
  await page.goto(`${origin}/docs`, { waitUntil: 'domcontentloaded' });
  await operation(page, 'put', '/kv/{key}').waitFor();
  await expect(page.locator('.info .title').textContent()).resolves.toContain('raft-kv');
  expect(await operation(page, 'get', '/kv/{key}').count()).toBe(1);
  expect(await page.locator('.opblock-summary-path[data-path="/status"]').count()).toBe(1);
  return { page, finished, close };
}

/**
 * What the page's renderer is doing, for an action that timed out: Playwright's actions wait for animation
 * frames (an element is "stable" once two frames agree), so a page that renders none makes every click wait
 * out its timeout, saying only "waiting for element to be visible, enabled and stable".
 */
async function rendererState(page: Page): Promise<string> {
  const probe = page.evaluate(
    () =>
      new Promise<string>((done) => {
        // Runs in the page (this project compiles without the DOM's types).
        const page = globalThis as unknown as {
          requestAnimationFrame(callback: () => void): number;
          document: { visibilityState: string; hasFocus(): boolean };
        };
        let frames = 0;
        const count = () => {
          frames++;
          page.requestAnimationFrame(count);
        };
        page.requestAnimationFrame(count);
        const { document } = page;
        setTimeout(() => done(`visibility ${document.visibilityState}, focus ${document.hasFocus()}, ${frames} animation frames in 1 s`), 1_000);
      }),
  );
  let timer: NodeJS.Timeout | undefined;
  const silent = new Promise<string>((done) => {
    timer = setTimeout(() => done('the page runs no script (5 s without an answer)'), 5_000);
  });
  return Promise.race([probe, silent])
    .catch((error: Error) => `the page cannot be asked: ${error.message}`)
    .finally(() => clearTimeout(timer));
}

/** `action` on `page`; if it fails, the error says what the page's renderer was doing. */
async function onPage<T>(page: Page, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof Error) {
      // Jest prints the stack, which holds the message as it was when the error was made.
      const said = error.message;
      error.message += `\n(renderer: ${await rendererState(page)})`;
      if (error.stack?.includes(said)) error.stack = error.stack.replace(said, error.message);
    }
    throw error;
  }
}

/** The operation block of `method` `path` in Swagger UI. */
function operation(page: Page, method: 'get' | 'put', path: string): Locator {
  return page.locator(`.opblock.opblock-${method}`).filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
}

/** Expands an operation, "Try it out", fills its parameters and body, Execute: the status and body shown. */
async function tryItOut(
  page: Page,
  method: 'get' | 'put',
  path: string,
  params: Record<string, string>,
  body?: string,
): Promise<{ status: string; body: string; shown: string }> {
  return onPage(page, async () => {
    const block = operation(page, method, path);
    await block.locator('.opblock-summary-control').click();
    await block.locator('button.try-out__btn').click();
    // "Try it out" prefills every parameter that has an example in the OpenAPI document (If-Match "42" and
    // If-None-Match * together, which the API refuses): clear those not given, as a user would.
    const inputs = block.locator('tr[data-param-name] input');
    await inputs.first().waitFor();
    for (const input of await inputs.all()) {
      const name = await input.evaluate((el) => el.closest('tr')?.getAttribute('data-param-name') ?? '');
      await input.fill(params[name] ?? '');
    }
    if (body !== undefined) await block.locator('textarea.body-param__text').fill(body);
    await block.locator('button.execute').click();
    const live = block.locator('.live-responses-table');
    await live.waitFor();
    // Swagger UI shows "Loading" until the answer (or the browser's refusal) is in.
    await block.locator('.loading-container').waitFor({ state: 'detached' });
    const shown = (await live.textContent()) ?? '';
    const row = live.locator('tbody tr.response').first();
    const status = ((await row.locator('.response-col_status').textContent()) ?? '').trim();
    const answer = (await row.locator('.response-col_description .microlight').first().textContent({ timeout: 5_000 }).catch(() => '')) ?? '';
    return { status, body: answer, shown };
  });
}

/**
 * The requests of a page that reached `node` after a redirect from `from`, once there is one (Playwright
 * reports a finished request a moment after the page has its answer).
 */
async function redirectedTo(finished: Request[], from: string, node: ClusterNode, path: string): Promise<Request[]> {
  const matching = () => finished.filter((r) => r.url() === `${node.url}${path}` && r.redirectedFrom()?.url().startsWith(from));
  await eventually(`a request redirected from ${from} to ${node.url}${path}`, async () => (matching().length > 0 ? true : undefined), 10_000);
  return matching();
}

describe('Swagger UI in Chromium', () => {
  it("loads on the leader, with the API listed (each follower's page: the next two tests)", async () => {
    const { close } = await openDocs(leader.url);
    await close();
  });

  it("on a follower's page, 'Try it out' PUT follows the redirect to the leader, then GET returns the value", async () => {
    const origin = follower.url;
    const { page, finished, close } = await openDocs(origin);
    const key = 'swagger-key';
    const put = await tryItOut(page, 'put', '/kv/{key}', { key }, JSON.stringify({ value: 'from the browser' }));
    expect({ status: put.status, shown: put.shown }).toMatchObject({ status: '200' });
    expect(JSON.parse(put.body)).toMatchObject({ success: true, index: expect.any(Number) });
    // The follower answered 307 and the browser re-sent the PUT to the leader, which consented (CORS).
    const [write, ...more] = await redirectedTo(finished, origin, leader, `/kv/${key}`);
    expect({ method: write?.method(), more: more.length }).toEqual({ method: 'PUT', more: 0 });
    expect(await (await write.response())?.headerValue('access-control-allow-origin')).toBe(origin);
    // ... and the write landed.
    await expect(http('GET', `${leader.url}/kv/${key}`)).resolves.toMatchObject({ status: 200, body: { key, value: 'from the browser' } });

    // A follower serves a linearizable read itself (ReadIndex): no redirect, the value read back.
    const get = await tryItOut(page, 'get', '/kv/{key}', { key });
    expect({ status: get.status, shown: get.shown }).toMatchObject({ status: '200' });
    expect(JSON.parse(get.body)).toMatchObject({ key, value: 'from the browser' });
    await close();
  });

  it('works from a page at localhost while the members are named 127.0.0.1', async () => {
    // The premise: the member is named 127.0.0.1, and its page is opened by another name.
    expect(aliasFollower.url).toBe(`http://127.0.0.1:${aliasFollower.port}`);
    const origin = `http://localhost:${aliasFollower.port}`;
    const { page, finished, close } = await openDocs(origin);
    const key = 'swagger-alias';
    const put = await tryItOut(page, 'put', '/kv/{key}', { key }, JSON.stringify({ value: 'alias' }));
    expect({ status: put.status, shown: put.shown }).toMatchObject({ status: '200' });
    const [write] = await redirectedTo(finished, origin, leader, `/kv/${key}`);
    expect(await (await write?.response())?.headerValue('access-control-allow-origin')).toBe(origin);
    await expect(http('GET', `${leader.url}/kv/${key}`)).resolves.toMatchObject({ status: 200, body: { value: 'alias' } });
    const get = await tryItOut(page, 'get', '/kv/{key}', { key });
    expect({ status: get.status, shown: get.shown }).toMatchObject({ status: '200' });
    expect(JSON.parse(get.body)).toMatchObject({ key, value: 'alias' });
    await close();
  });

  it('another page the browser visits cannot write: no CORS consent, so the PUT is never sent', async () => {
    // A page on another loopback port: an origin that no member serves.
    const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>elsewhere</p>'));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const { page, close } = await freshPage();
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const attempt = (url: string) =>
        page.evaluate(async (target) => {
          try {
            const res = await fetch(target, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"value":"evil"}' });
            return `answered ${res.status}`;
          } catch (error) {
            return `refused: ${(error as Error).name}`;
          }
        }, url);
      // Sent to the leader, and to a follower (whose 307 the browser would follow).
      expect(await attempt(`${leader.url}/kv/swagger-evil`)).toBe('refused: TypeError');
      expect(await attempt(`${follower.url}/kv/swagger-evil`)).toBe('refused: TypeError');
      await close();
      await expect(http('GET', `${leader.url}/kv/swagger-evil`)).resolves.toMatchObject({ status: 404 });
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });
});
