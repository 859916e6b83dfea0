// The console's shell: sign-in, the hash router (the URL holds the view and its filters, so a
// link is shareable: #/jobs?namespace=team-a&state=waiting), the refresh loop, focus
// management and the confirmation dialog. Views live in ./views/ and only read the API.

import * as api from './api.js';
import { h, replace, errorBox, field } from './dom.js';
import * as queues from './views/queues.js';
import * as jobs from './views/jobs.js';
import * as job from './views/job.js';
import * as dlq from './views/dlq.js';
import * as schedules from './views/schedules.js';
import * as cluster from './views/cluster.js';

const REFRESH_MS = 5000;
const VIEWS = { queues, jobs, dlq, schedules, cluster };
const TITLES = { queues: 'Queues', jobs: 'Jobs', dlq: 'Dead letters', schedules: 'Schedules', cluster: 'Cluster' };

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
let me = null;
let generation = 0;
let timer = null;
let rendering = false;

/** `#/jobs/ID?state=x` → {view: 'jobs', id: 'ID', params}. */
function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, search] = raw.split('?', 2);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (e) {
      return p;
    }
  });
  const view = VIEWS[parts[0]] ? parts[0] : 'queues';
  return { view, id: parts[1] || null, params: new URLSearchParams(search || '') };
}

/** Goes to `view` with `params` (an object; empty values dropped). */
function navigate(view, params = {}, id = null) {
  const q = api.query(params);
  const target = `#/${view}${id ? `/${encodeURIComponent(id)}` : ''}${q}`;
  if (location.hash === target) render({ focus: true });
  else location.hash = target;
}

/** Says something to screen readers and shows it in the status line. */
function announce(text, tone = 'info') {
  statusLine.className = `status ${tone}`;
  statusLine.textContent = text;
}

/** Whether the token has `role` in `namespace` (any namespace when omitted). */
function can(role, namespace) {
  if (!me || !me.roles.includes(role)) return false;
  return namespace === undefined || namespace === null || me.allNamespaces || me.namespaces.includes(namespace);
}

/**
 * Asks for confirmation in a modal dialog; resolves with the dialog's form when confirmed,
 * `null` when cancelled (Escape included). Focus returns to where it was.
 */
function confirm({ title, text, ok = 'Confirm', extra = null }) {
  const dialog = document.getElementById('confirm');
  const back = document.activeElement;
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = ok;
  replace(document.getElementById('confirm-extra'), extra);
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (back && back.isConnected) back.focus();
      resolve(dialog.returnValue === 'ok' ? dialog.querySelector('form') : null);
    }, { once: true });
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

/**
 * Runs an action (a POST), reports its outcome, then refreshes the view — or, when given,
 * calls `then` instead (the object shown is gone: go elsewhere).
 */
async function act(what, fn, then) {
  try {
    const result = await fn();
    announce(typeof what === 'function' ? what(result) : what, 'ok');
    if (then) then(result);
    else await render({ focus: false });
    return result;
  } catch (e) {
    announce(`${e.message}${e.code ? ` (${e.code})` : ''}`, 'bad');
    if (e.status === 401) signOut('Your token is no longer accepted; sign in again.');
    return null;
  }
}

const ctx = () => ({ me, navigate, announce, can, confirm, act });

function markNav(view) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/**
 * Renders the current route. `focus`: a navigation (focus goes to the heading, the title
 * changes); otherwise a refresh, which keeps focus on the control that had it.
 */
async function render({ focus }) {
  if (!me) return;
  const mine = ++generation;
  const hash = location.hash;
  const route = parseRoute();
  main.setAttribute('aria-busy', 'true');
  markNav(route.view);
  const module = route.id && route.view === 'jobs' ? job : VIEWS[route.view];
  const focused = focusKey(document.activeElement);
  rendering = true;
  let node;
  try {
    node = await module.render({ ...ctx(), id: route.id, params: route.params });
  } catch (e) {
    if (e.status === 401) {
      signOut('Your token is no longer accepted; sign in again.');
      return;
    }
    if (!focus && main.childElementCount > 0) {
      // A refresh that failed: keep what is shown, say why.
      announce(`Could not refresh: ${e.message}`, 'bad');
      main.removeAttribute('aria-busy');
      rendering = false;
      return;
    }
    node = h('section', null, h('h1', { tabindex: -1 }, TITLES[route.view]), errorBox(e));
  } finally {
    rendering = false;
  }
  if (mine !== generation) return;
  replace(main, node);
  // What the view shows now, for whoever waits on it (a screen reader, a browser test).
  main.removeAttribute('aria-busy');
  main.dataset.shown = hash;
  const heading = main.querySelector('h1');
  if (focus) {
    const title = heading ? heading.dataset.title || heading.textContent : TITLES[route.view];
    document.title = `${title} · Spark orchestrator`;
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus();
    }
  } else if (focused) {
    const again = findFocus(focused);
    if (again) again.focus({ preventScroll: true });
  }
}

/** What identifies the focused control across a re-render: its id, else its link and text. */
function focusKey(el) {
  if (!el || el === main || !main.contains(el)) return null;
  return { id: el.id, tag: el.tagName, href: el.getAttribute('href'), text: el.textContent };
}

function findFocus(key) {
  if (key.id) return document.getElementById(key.id);
  return [...main.querySelectorAll(key.tag)]
    .find((el) => el.getAttribute('href') === key.href && el.textContent === key.text) || null;
}

function scheduleRefresh() {
  clearInterval(timer);
  timer = setInterval(() => {
    const auto = document.getElementById('auto-refresh');
    const dialogOpen = document.getElementById('confirm').open;
    const typing = document.activeElement && ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName)
      && main.contains(document.activeElement);
    if (me && auto.checked && !document.hidden && !dialogOpen && !typing && !rendering) {
      render({ focus: false });
    }
  }, REFRESH_MS);
}

function showSession() {
  document.getElementById('nav').hidden = false;
  document.getElementById('session').hidden = false;
  const scope = me.allNamespaces ? 'all namespaces' : me.namespaces.join(', ') || 'no namespace';
  replace(document.getElementById('who'),
    h('span', { class: 'who-name' }, me.name), ' · ',
    h('span', null, me.roles[me.roles.length - 1] || 'no role'), ' · ',
    h('span', null, scope));
}

function signOut(message) {
  api.setToken(null);
  me = null;
  clearInterval(timer);
  main.removeAttribute('aria-busy');
  delete main.dataset.shown;
  document.getElementById('nav').hidden = true;
  document.getElementById('session').hidden = true;
  showSignIn(message);
}

function showSignIn(message) {
  document.title = 'Sign in · Spark orchestrator';
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'token-help' });
  const problem = h('div', { id: 'sign-in-error', role: 'alert' });
  if (message) replace(problem, errorBox({ message }));
  const form = h('form', { class: 'sign-in', novalidate: true, on: { submit: async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) {
      replace(problem, errorBox({ message: 'Enter an API token.' }));
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    try {
      const who = await api.call('GET', '/v1/whoami', undefined, value);
      api.setToken(value);
      me = who;
      start();
    } catch (e) {
      const why = e.status === 401
        ? `That token was not accepted: ${e.message}.`
        : e.message;
      replace(problem, errorBox({ message: why, code: e.code }));
      input.setAttribute('aria-invalid', 'true');
      input.select();
      input.focus();
    }
  } } },
  h('h1', { tabindex: -1 }, 'Sign in'),
  h('p', null, 'Use an API token from the orchestrator\'s [auth] configuration. It is kept in this tab only and forgotten when the tab closes.'),
  field('API token', input, 'token'),
  h('p', { id: 'token-help', class: 'hint' }, 'What you can see and do follows the token\'s roles and namespaces.'),
  problem,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  replace(main, h('section', { class: 'narrow' }, form));
  input.focus();
}

function start() {
  showSession();
  if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/queues');
  render({ focus: true });
  scheduleRefresh();
}

async function boot() {
  document.getElementById('sign-out').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => render({ focus: true }));
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && me) render({ focus: false });
  });
  const saved = api.token();
  if (!saved) {
    showSignIn();
    return;
  }
  try {
    me = await api.get('/v1/whoami');
    start();
  } catch (e) {
    if (e.status === 401) signOut('The saved token is no longer accepted; sign in again.');
    else showSignIn(e.message);
  }
}

boot();
