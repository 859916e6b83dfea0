// One job: state and why, attempts, its place in line and why it waits, what it asks of the
// cluster (footprint), its SparkApplication, the timeline of its transitions, and cancel.

import { get, post } from '../api.js';
import { h, empty } from '../dom.js';
import { ago, at, stateBadge, priorityBadge, reasonBadge } from '../format.js';

const CANCELLABLE = ['queued', 'waiting', 'submitted', 'running', 'retrying'];

function row(label, ...value) {
  return h('div', null, h('dt', null, label), h('dd', null, ...value));
}

/** "nodeType small" or "2 cores, 4g (+ overhead 1g)". */
function size(spec) {
  if (!spec) return '—';
  if (spec.nodeType) return h('span', null, 'node type ', h('code', null, spec.nodeType));
  const parts = [];
  if (spec.cores !== undefined) parts.push(`${spec.cores} core${Number(spec.cores) === 1 ? '' : 's'}`);
  if (spec.memory) parts.push(`memory ${spec.memory}`);
  if (spec.memoryOverhead) parts.push(`overhead ${spec.memoryOverhead}`);
  return parts.join(', ') || '—';
}

function executors(spec) {
  if (!spec) return '—';
  if (spec.dynamicAllocation) {
    const d = spec.dynamicAllocation;
    return `dynamic: ${d.minExecutors ?? '?'}–${d.maxExecutors ?? '?'} (initially ${d.initialExecutors ?? d.minExecutors ?? '?'})`;
  }
  return `${spec.instances ?? 1} instance${spec.instances === 1 ? '' : 's'}`;
}

export async function render(ctx) {
  const j = await get(`/v1/jobs/${encodeURIComponent(ctx.id)}`);
  const spec = j.job || {};
  const canCancel = CANCELLABLE.includes(j.state) && ctx.can('submit', j.namespace);
  const cancel = canCancel
    ? h('button', { type: 'button', class: 'danger', id: 'job-cancel', on: { click: async () => {
      const ok = await ctx.confirm({
        title: `Cancel ${j.name}?`,
        text: `The job becomes cancelled${['submitted', 'running'].includes(j.state) ? ' and its SparkApplication is deleted' : ''}. This cannot be undone.`,
        ok: 'Cancel the job',
      });
      if (ok) await ctx.act((r) => `Job ${j.name}: ${r.message}.`, () => post(`/v1/jobs/${encodeURIComponent(j.id)}/cancel`));
    } } }, 'Cancel job')
    : null;

  const summary = h('dl', { class: 'facts' },
    row('State', stateBadge(j.state), ' ', j.reason ? reasonBadge(j.reason) : null),
    j.message ? row('Message', j.message) : null,
    row('Namespace', j.namespace),
    row('Priority', priorityBadge(j.priority)),
    row('Attempt', `${j.attempt} of ${j.maxAttempts}`, h('span', { class: 'muted' }, ` (${j.retriesLeft} retr${j.retriesLeft === 1 ? 'y' : 'ies'} left)`)),
    j.queuePosition ? row('Position in line', String(j.queuePosition)) : null,
    j.estimatedStartAt ? row('Estimated start', at(j.estimatedStartAt), ' · ', ago(j.estimatedStartAt)) : null,
    row('SparkApplication', j.sparkApplication ? h('code', null, j.sparkApplication) : h('span', { class: 'muted' }, 'none yet')),
    row('Source', j.source),
    row('Enqueued', at(j.enqueuedAt), ' · ', ago(j.enqueuedAt)),
    row('Updated', ago(j.updatedAt)),
    j.finishedAt ? row('Finished', at(j.finishedAt)) : null,
    j.nextAttemptAt ? row('Next attempt', ago(j.nextAttemptAt)) : null,
    j.expiresAt ? row('Gives up', ago(j.expiresAt), h('span', { class: 'muted' }, ' unless started (ttl)')) : null,
    row('Id', h('code', null, j.id)));

  const waiting = j.waiting
    ? h('section', { class: 'callout warn', 'aria-labelledby': 'job-waiting' },
      h('h2', { id: 'job-waiting' }, 'Why it waits'),
      h('p', null, reasonBadge(j.waiting.code), ' ', j.waiting.message),
      h('p', { class: 'muted' }, 'Waiting since ', ago(j.waiting.since),
        j.waiting.position ? ` · position ${j.waiting.position} when last considered` : ''))
    : null;

  const footprint = h('section', { 'aria-labelledby': 'job-footprint' },
    h('h2', { id: 'job-footprint' }, 'Footprint'),
    h('dl', { class: 'facts' },
      row('Driver', size(spec.driver)),
      row('Executors', size(spec.executor), ' × ', executors(spec.executor)),
      row('Spot executors', spec.spot ? 'yes' : 'no'),
      row('Image', h('code', null, spec.image || '—')),
      row('Application', h('code', null, spec.mainApplicationFile || '—'), spec.mainClass ? h('span', null, ' · ', h('code', null, spec.mainClass)) : null),
      spec.arguments && spec.arguments.length ? row('Arguments', h('ul', { class: 'plain' }, spec.arguments.map((a) => h('li', null, h('code', null, a))))) : null,
      spec.tags && Object.keys(spec.tags).length ? row('Tags', h('ul', { class: 'plain' }, Object.entries(spec.tags).map(([k, v]) => h('li', null, h('code', null, `${k}=${v}`))))) : null));

  const history = j.history.length
    ? h('ol', { class: 'timeline' }, j.history.map((t) => h('li', null,
      h('div', { class: 'when' }, at(t.at)),
      h('div', { class: 'what' },
        t.from ? stateBadge(t.from) : h('span', { class: 'muted' }, 'new'), ' → ', stateBadge(t.to),
        t.reason ? h('span', null, ' ', reasonBadge(t.reason)) : null,
        h('span', { class: 'muted' }, ` attempt ${t.attempt}`)),
      t.message ? h('div', { class: 'message' }, t.message) : null)))
    : empty('No transition recorded.');

  return h('section', { class: 'view-job' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, '← Jobs')),
    h('div', { class: 'heading with-actions' },
      h('h1', { tabindex: -1, 'data-title': j.name }, j.name, ' ', stateBadge(j.state)),
      h('div', { class: 'actions' }, cancel)),
    summary,
    waiting,
    footprint,
    h('section', { 'aria-labelledby': 'job-history' }, h('h2', { id: 'job-history' }, 'Timeline'), history),
    h('details', { class: 'raw' }, h('summary', null, 'The job as submitted (JSON)'), h('pre', null, JSON.stringify(spec, null, 2))));
}

