// The web console in Debian's chromium, driven by playwright-core (no browser download).
// Started by orchestrator/tests/console.rs once a daemon runs on kube-sim with seeded data;
// it passes the URL, the tokens and what it seeded in the environment. Every check compares
// what the page shows with what the API answers. Any console error or uncaught exception in
// the page fails the test it happened in.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.CONSOLE_URL;
const ADMIN = process.env.CONSOLE_ADMIN_TOKEN;
const READER = process.env.CONSOLE_READ_TOKEN;
const TEAM_A = process.env.CONSOLE_TEAM_A_TOKEN;
const SEED = JSON.parse(process.env.CONSOLE_SEED || '{}');
const SHOTS = process.env.CONSOLE_SHOTS;
const LAPTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

assert.ok(BASE && ADMIN && READER && TEAM_A && SHOTS, 'run through orchestrator/tests/console.rs');

let browser;
let problems = [];
let allowed = [];

/** The API, as the admin (or `token`). */
async function api(pathname, { method = 'GET', body, token = ADMIN } = {}) {
  const response = await fetch(`${BASE}${pathname}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  assert.ok(response.ok, `${method} ${pathname}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/** Retries `check` until it stops throwing (the page refreshes itself), at most `ms`. */
async function eventually(check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** A fresh tab (its own sessionStorage) listening for errors. */
/** Waits until the view shows the route in the address bar (the app marks `main` with it). */
async function shown(page) {
  await page.waitForFunction(() => document.getElementById('main').dataset.shown === location.hash);
}

async function newPage(viewport = LAPTOP) {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowed.some((re) => re.test(m.text()))) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`unexpected dialog: ${d.message()}`);
    d.dismiss();
  });
  return page;
}

async function signIn(page, token, hash = '#/queues') {
  await page.goto(`${BASE}/ui/${hash}`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#nav').waitFor({ state: 'visible' });
  await shown(page);
}

async function noXss(page) {
  const xss = await page.evaluate(() => window.__xss);
  assert.equal(xss, undefined, 'hostile markup ran');
  assert.equal(await page.locator('img[src="x"], b:text("bold?")').count(), 0, 'hostile markup became elements');
}

before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
});

afterEach(() => {
  const seen = problems;
  problems = [];
  allowed = [];
  assert.deepEqual(seen, [], 'the page logged errors');
});

test('a bad token gets a clear error and the form keeps focus', async () => {
  // The refused /v1/whoami is logged by the browser as a failed resource: expected here.
  allowed = [/status of 401/];
  const page = await newPage();
  await page.goto(`${BASE}/ui/`);
  assert.equal(await page.title(), 'Sign in · Spark orchestrator');
  await page.getByLabel('API token').fill('not-a-real-token-0123456789');
  await page.keyboard.press('Enter');
  const alert = page.locator('#sign-in-error [role="alert"]');
  await alert.waitFor();
  assert.match(await alert.innerText(), /not accepted: unknown token/);
  assert.equal(await page.getByLabel('API token').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
  assert.ok(await page.locator('#nav').isHidden(), 'no navigation before signing in');
  await page.getByLabel('API token').fill('');
  await page.keyboard.press('Enter');
  assert.match(await alert.innerText(), /Enter an API token/);
  await page.context().close();
});

test('queues show each queue\'s depth, oldest wait and heads with why they wait', async () => {
  const page = await newPage();
  await signIn(page, ADMIN);
  assert.match(await page.locator('#who').innerText(), /ops · admin · all namespaces/);
  // The API and the page are read a moment apart: compare until both agree.
  const data = await eventually(async () => {
    const now = await api('/v1/queues?heads=10');
    for (const q of now.queues) {
      const card = page.locator('article.card', { has: page.locator(`h2#queue-${q.namespace}-${q.priority}`) });
      assert.equal(await card.locator('dd.big').innerText(), String(q.depth), `${q.namespace}/${q.priority} depth`);
      const rows = card.locator('tbody tr');
      assert.equal(await rows.count(), q.heads.length, `${q.namespace}/${q.priority} heads`);
      for (const [i, head] of q.heads.entries()) {
        const text = await rows.nth(i).innerText();
        assert.ok(text.includes(head.name) && text.includes(String(head.position)), text);
        if (head.waitingReason) assert.ok(text.includes(head.waitingReason) && text.includes(head.waitingMessage), text);
      }
    }
    return now;
  });
  const waiting = data.queues.flatMap((q) => q.heads).filter((j) => j.waitingReason);
  assert.ok(waiting.length > 0, 'the seed has jobs waiting for capacity');
  await shoot(page, 'queues');
  await page.context().close();
});

test('jobs list newest first, filter by state and name, and the URL keeps the filters', async () => {
  const page = await newPage();
  await signIn(page, ADMIN, '#/jobs');
  const all = await api('/v1/jobs?limit=25');
  await eventually(async () => {
    const names = await page.locator('table.jobs tbody tr td:first-child').allInnerTexts();
    assert.deepEqual(names, all.items.map((j) => j.name));
  });
  await shoot(page, 'jobs');

  await page.getByLabel('State').selectOption('waiting');
  await page.getByLabel('Namespace').selectOption('team-a');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/#\/jobs\?namespace=team-a&state=waiting$/);
  const waiting = await api('/v1/jobs?namespace=team-a&state=waiting&limit=25');
  await eventually(async () => {
    const names = await page.locator('table.jobs tbody tr td:first-child').allInnerTexts();
    assert.deepEqual(names, waiting.items.map((j) => j.name));
  });
  assert.ok(waiting.items.length > 0);
  assert.equal(await page.locator('table.jobs tbody .badge.warn').count(), waiting.items.length);

  // Shareable: a new tab signed in on the same URL shows the same filters.
  const shared = page.url();
  const other = await newPage();
  await signIn(other, ADMIN, new URL(shared).hash);
  assert.equal(await other.getByLabel('State').inputValue(), 'waiting');
  assert.equal(await other.getByLabel('Namespace').inputValue(), 'team-a');
  await other.context().close();

  await page.goto(`${BASE}/ui/#/jobs?name=etl-p`);
  await eventually(async () => {
    const names = await page.locator('table.jobs tbody tr td:first-child').allInnerTexts();
    assert.deepEqual(names, ['etl-payments']);
  });
  await page.goto(`${BASE}/ui/#/jobs?name=no-such-job`);
  await page.getByText('No job matches these filters.').waitFor();

  // Pagination: three at a time through "Older", every job once, newest first.
  const everything = await api('/v1/jobs?limit=100');
  await page.goto(`${BASE}/ui/#/jobs?limit=3`);
  const seen = [];
  for (let guard = 0; guard < 40; guard += 1) {
    await page.locator('table.jobs').waitFor();
    seen.push(...await page.locator('table.jobs tbody tr td:first-child').allInnerTexts());
    const older = page.locator('#jobs-older');
    if (await older.count() === 0) break;
    const before = page.url();
    await older.click();
    await page.waitForURL((u) => u.toString() !== before);
    await shown(page);
  }
  assert.deepEqual(seen, everything.items.map((j) => j.name));
  await page.context().close();
});

test('job detail: timeline, waiting reason, footprint, application, cancel', async () => {
  const page = await newPage();
  await signIn(page, ADMIN, '#/jobs');
  const list = await api('/v1/jobs?state=running&limit=1');
  const running = await api(`/v1/jobs/${list.items[0].id}`);
  await page.getByRole('link', { name: running.name, exact: true }).first().click();
  await page.locator('h1', { hasText: running.name }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.tagName), 'H1', 'focus moves to the heading');
  assert.equal(await page.locator('ol.timeline > li').count(), running.history.length);
  assert.ok((await page.locator('main').innerText()).includes(running.sparkApplication));
  assert.match(await page.locator('main').innerText(), /node type small/);
  await shoot(page, 'job');

  const waitingList = await api('/v1/jobs?state=waiting&namespace=team-a&limit=1');
  const waiting = await api(`/v1/jobs/${waitingList.items[0].id}`);
  await page.goto(`${BASE}/ui/#/jobs/${waiting.id}`);
  const why = page.locator('section.callout');
  await why.waitFor();
  assert.ok((await why.innerText()).includes(waiting.waiting.message));

  // Cancel asks first; dismissing it changes nothing.
  await page.getByRole('button', { name: 'Cancel job' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'job-cancel', 'focus returns to the button');
  assert.equal((await api(`/v1/jobs/${waiting.id}`)).state, 'waiting');
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await dialog.getByRole('button', { name: 'Cancel the job' }).click();
  await eventually(async () => assert.equal((await api(`/v1/jobs/${waiting.id}`)).state, 'cancelled'));
  await page.locator('#status', { hasText: 'cancelled' }).waitFor();
  await page.locator('h1 .badge', { hasText: 'cancelled' }).waitFor();
  await page.context().close();
});

test('hostile strings in a job and a dead letter are shown as text, never run', async () => {
  const page = await newPage();
  await signIn(page, ADMIN, `#/jobs/${SEED.xssJob}`);
  await page.locator('h1', { hasText: 'xss-probe' }).waitFor();
  const args = await page.locator('dd ul.plain code').allInnerTexts();
  assert.ok(args.some((a) => a.includes('<img src=x onerror=')), JSON.stringify(args));
  await page.getByText('The job as submitted (JSON)').click();
  assert.ok((await page.locator('pre').innerText()).includes('<script>window.__xss'));
  await noXss(page);

  const dead = await api('/v1/dlq?reason=invalid');
  await page.goto(`${BASE}/ui/#/dlq/${dead.items[0].id}`);
  const body = page.locator('pre.body');
  await body.waitFor();
  assert.equal(await body.innerText(), SEED.invalidBody);
  await noXss(page);
  await page.context().close();
});

test('dead letters by reason; requeue moves the job back; purge asks first', async () => {
  const page = await newPage();
  await signIn(page, ADMIN, '#/dlq');
  const dead = await api('/v1/dlq');
  await eventually(async () => assert.equal(await page.locator('table.dlq tbody tr').count(), dead.items.length));
  for (const d of dead.items) {
    assert.ok((await page.locator('table.dlq tbody').innerText()).includes(d.message.slice(0, 40)));
  }
  assert.equal(await page.locator('ul.chips li').count(), new Set(dead.items.map((d) => d.reason)).size);
  await shoot(page, 'dlq');

  await page.getByLabel('Reason', { exact: true }).selectOption('never-fits');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/reason=never-fits/);
  const neverFits = dead.items.find((d) => d.reason === 'never-fits');
  assert.equal(neverFits.jobId, SEED.neverFits);
  await eventually(async () => assert.equal(await page.locator('table.dlq tbody tr').count(), 1));
  await page.locator(`#dlq-requeue-${neverFits.id}`).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Requeue' }).click();
  await page.locator('#status', { hasText: 'Requeued: 1 job' }).waitFor();
  const record = await api(`/v1/dlq/${neverFits.id}`);
  assert.ok(record.requeuedAt, 'the dead letter is marked requeued');
  const history = (await api(`/v1/jobs/${SEED.neverFits}`)).history;
  assert.ok(history.some((t) => t.from === 'dead' && t.to === 'queued'), JSON.stringify(history));

  const invalid = dead.items.find((d) => d.reason === 'invalid');
  await page.goto(`${BASE}/ui/#/dlq/${invalid.id}`);
  await page.getByRole('button', { name: 'Purge' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  await api(`/v1/dlq/${invalid.id}`);
  await page.getByRole('button', { name: 'Purge' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Purge' }).click();
  await page.waitForURL(/#\/dlq$/);
  const gone = await fetch(`${BASE}/v1/dlq/${invalid.id}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(gone.status, 404);
  await page.context().close();
});

test('schedules show their next fires in their zone; pause and resume', async () => {
  const page = await newPage();
  await signIn(page, ADMIN, '#/schedules');
  const data = await api('/v1/schedules?fires=3');
  const s = data.items.find((x) => x.name === 'nightly-etl');
  const row = page.locator('table.schedules tbody tr', { hasText: 'nightly-etl' });
  await row.waitFor();
  const text = await row.innerText();
  assert.ok(text.includes('Europe/Paris') && text.includes(SEED.scheduleCron), text);
  const walls = await row.locator('ul.fires .wall').allInnerTexts();
  assert.deepEqual(walls, s.nextFires.map((f) => f.nominal.replace('T', ' ').replace(/:00$/, '')));
  assert.ok(walls.every((w) => w.endsWith(` ${SEED.scheduleTime}`)), 'wall-clock times in the zone');
  await shoot(page, 'schedules');
  await page.getByRole('button', { name: 'Pause nightly-etl' }).click();
  await eventually(async () => assert.equal((await api('/v1/schedules/nightly-etl')).suspended, true));
  await page.getByRole('button', { name: 'Resume nightly-etl' }).click();
  await eventually(async () => assert.equal((await api('/v1/schedules/nightly-etl')).suspended, false));
  await page.context().close();
});

test('cluster shows per pool what the API reports', async () => {
  const page = await newPage();
  await signIn(page, ADMIN, '#/cluster');
  const c = await api('/v1/cluster');
  const pool = c.pools.find((p) => p.name === 'general');
  const card = page.locator('article.card', { has: page.locator('h2#pool-general') });
  await card.waitFor();
  const figures = card.locator('table.figures tbody tr');
  const cells = async (i) => figures.nth(i).locator('th, td').allInnerTexts();
  assert.deepEqual((await cells(0)).slice(1, 2), [String(pool.allocatable.cpuMillis / 1000)]);
  await eventually(async () => {
    const now = await api('/v1/cluster');
    const p = now.pools.find((x) => x.name === 'general');
    assert.deepEqual((await cells(1)).slice(1, 2), [String(p.requested.cpuMillis / 1000)]);
  });
  assert.match(await card.innerText(), /Nodes\s*1/);
  assert.ok((await page.locator('main').innerText()).includes('team-a'), 'the quota of team-a');
  await shoot(page, 'cluster');
  await page.context().close();
});

test('a read token sees no admin or submit action', async () => {
  const page = await newPage();
  await signIn(page, READER, '#/dlq');
  assert.match(await page.locator('#who').innerText(), /dashboard-viewer · read/);
  await page.locator('table.dlq').waitFor();
  assert.equal(await page.getByRole('button', { name: /Requeue|Purge/ }).count(), 0);
  await page.goto(`${BASE}/ui/#/schedules`);
  await page.locator('table.schedules').waitFor();
  assert.equal(await page.getByRole('button', { name: /Pause|Resume/ }).count(), 0);
  const waiting = await api('/v1/jobs?state=waiting&limit=1');
  await page.goto(`${BASE}/ui/#/jobs/${waiting.items[0].id}`);
  await page.locator('ol.timeline').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Cancel job' }).count(), 0);
  await page.context().close();
});

test('a namespace-scoped token sees only its namespace', async () => {
  allowed = [/status of 403/];
  const page = await newPage();
  await signIn(page, TEAM_A, '#/jobs');
  assert.match(await page.locator('#who').innerText(), /team-a-ci · submit · team-a$/);
  await page.locator('table.jobs').waitFor();
  const namespaces = await page.locator('table.jobs tbody td:nth-child(2)').allInnerTexts();
  assert.ok(namespaces.length > 0 && namespaces.every((n) => n === 'team-a'), JSON.stringify(namespaces));
  const options = await page.getByLabel('Namespace').locator('option').allInnerTexts();
  assert.deepEqual(options, ['All namespaces', 'team-a']);
  await page.goto(`${BASE}/ui/#/queues`);
  await page.locator('article.card').first().waitFor();
  const titles = await page.locator('article.card h2').allInnerTexts();
  assert.ok(titles.every((t) => t.startsWith('team-a')), JSON.stringify(titles));
  const other = (await api('/v1/jobs?namespace=team-b&limit=1')).items[0];
  await page.goto(`${BASE}/ui/#/jobs/${other.id}`);
  await page.locator('main [role="alert"]', { hasText: 'may not access namespace "team-b"' }).waitFor();
  await page.context().close();
});

test('the keyboard reaches every view and the main controls', async () => {
  const page = await newPage();
  await signIn(page, ADMIN);
  await page.locator('article.card').first().waitFor();
  // Tab from the top of the page: the skip link, the five views, the session controls, the
  // filter and its buttons, then the queues' job links.
  await page.evaluate(() => document.activeElement.blur());
  const reached = [];
  for (let i = 0; i < 16; i += 1) {
    await page.keyboard.press('Tab');
    reached.push(await page.evaluate(() => {
      const el = document.activeElement;
      return `${el.tagName}:${(el.getAttribute('aria-label') || el.textContent || el.id || '').trim().slice(0, 30)}`;
    }));
  }
  for (const expected of ['A:Skip to content', 'A:Queues', 'A:Jobs', 'A:Dead letters', 'A:Schedules', 'A:Cluster', 'BUTTON:Sign out', 'BUTTON:Apply']) {
    assert.ok(reached.includes(expected), `${expected} not reached: ${reached.join(' | ')}`);
  }
  // Enter on a view's link opens it and puts focus on its heading.
  await page.locator('#nav a[data-view="dlq"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/dlq$/);
  await eventually(async () => assert.equal(
    await page.evaluate(() => `${document.activeElement.tagName}:${document.activeElement.textContent}`),
    'H1:Dead letters',
  ));
  assert.equal(await page.title(), 'Dead letters · Spark orchestrator');
  // The view refreshes itself and keeps focus where it was.
  await page.goto(`${BASE}/ui/#/jobs`);
  await page.locator('table.jobs').waitFor();
  const link = page.locator('table.jobs tbody a').nth(1);
  const text = await link.innerText();
  await link.focus();
  const stamp = await page.locator('.updated').innerText();
  await eventually(async () => assert.notEqual(await page.locator('.updated').innerText(), stamp), 20000);
  assert.equal(await page.evaluate(() => document.activeElement.textContent), text, 'focus survives a refresh');
  // Every control has an accessible name.
  const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, a[href], input, select')]
    .filter((el) => !el.closest('[hidden]'))
    .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim() || (el.id && document.querySelector(`label[for="${el.id}"]`))))
    .map((el) => el.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);
  await page.context().close();
});

test('every view reads on a phone', async () => {
  const page = await newPage(PHONE);
  await signIn(page, ADMIN);
  const first = await api(`/v1/jobs/${SEED.jobs[0]}`);
  const views = [['queues', '#/queues', 'Queues'], ['jobs', '#/jobs', 'Jobs'], ['job', `#/jobs/${SEED.jobs[0]}`, first.name],
    ['dlq', '#/dlq?includeRequeued=true', 'Dead letters'], ['schedules', '#/schedules', 'Schedules'], ['cluster', '#/cluster', 'Cluster']];
  for (const [name, hash, title] of views) {
    await page.goto(`${BASE}/ui/${hash}`);
    await page.waitForFunction((t) => document.title === `${t} · Spark orchestrator`, title);
    await page.waitForLoadState('networkidle');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${name} scrolls sideways by ${overflow}px on a phone`);
    await shoot(page, name, 'phone');
  }
  await page.context().close();
});

/** A full-page screenshot of the current view. */
async function shoot(page, name, size = 'laptop') {
  await page.locator('main h1').waitFor();
  await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: true, animations: 'disabled' });
}
