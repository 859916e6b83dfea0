// Dead letters: by reason and namespace, oldest first; one with its body and problems. An
// admin may requeue (the job goes back in line with its id and history) or purge, each after
// a confirmation.

import { get, post, query } from '../api.js';
import { h, table, empty } from '../dom.js';
import { ago, at, reasonBadge, jobLink } from '../format.js';
import { heading, namespaceOptions, filterForm, select } from './common.js';

export const REASONS = ['invalid', 'unknown-namespace', 'never-fits', 'expired', 'retries-exhausted', 'cancelled', 'rejected', 'unrecoverable'];

function requeueButton(ctx, d, id) {
  return h('button', { type: 'button', class: 'secondary', id, on: { click: async () => {
    const reset = h('input', { type: 'checkbox', name: 'reset', id: 'confirm-reset' });
    const form = await ctx.confirm({
      title: `Requeue dead letter ${d.id}?`,
      text: d.jobId
        ? 'The job goes back to the end of its queue with its id and history.'
        : 'The message is published again and validated afresh.',
      ok: 'Requeue',
      extra: d.jobId ? h('div', { class: 'field check' }, reset, h('label', { for: 'confirm-reset' }, 'Give it its full retry budget again')) : null,
    });
    if (form) {
      await ctx.act((r) => `Requeued: ${r.jobs} job${r.jobs === 1 ? '' : 's'}, ${r.messages} message${r.messages === 1 ? '' : 's'}${r.skipped ? `, ${r.skipped} skipped` : ''}.`,
        () => post('/v1/dlq/requeue', { id: d.id, resetAttempts: reset.checked }));
    }
  } } }, 'Requeue');
}

function purgeButton(ctx, d, id, after) {
  return h('button', { type: 'button', class: 'danger', id, on: { click: async () => {
    const form = await ctx.confirm({
      title: `Purge dead letter ${d.id}?`,
      text: 'The record and its body are deleted for good.',
      ok: 'Purge',
    });
    if (form) {
      await ctx.act((x) => `Purged ${x.purged} dead letter${x.purged === 1 ? '' : 's'}.`, () => post('/v1/dlq/purge', { id: d.id }), after);
    }
  } } }, 'Purge');
}

export async function render(ctx) {
  if (ctx.id) return detail(ctx);
  const p = ctx.params;
  const filters = {
    namespace: p.get('namespace') || '',
    reason: p.get('reason') || '',
    includeRequeued: p.get('includeRequeued') === 'true' ? 'true' : '',
  };
  const cursor = p.get('cursor') || '';
  const page = await get(`/v1/dlq${query({ ...filters, cursor, limit: 50 })}`);
  const admin = ctx.can('admin');
  const requeued = h('input', { type: 'checkbox', checked: filters.includeRequeued === 'true' });
  const form = filterForm(ctx, 'dlq', 'dlq', [
    ['Namespace', 'namespace', select('namespace', namespaceOptions(ctx.me), filters.namespace)],
    ['Reason', 'reason', select('reason', [['', 'Any reason'], ...REASONS.map((r) => [r, r])], filters.reason)],
    ['Include requeued', 'includeRequeued', requeued],
  ]);
  const counts = {};
  for (const d of page.items) counts[d.reason] = (counts[d.reason] || 0) + 1;
  const byReason = Object.keys(counts).length
    ? h('ul', { class: 'chips', 'aria-label': 'Dead letters on this page by reason' },
      Object.entries(counts).map(([r, n]) => h('li', null,
        h('a', { href: `#/dlq${query({ ...filters, reason: r })}` }, reasonBadge(r), ` ${n}`))))
    : null;
  const headers = ['Id', 'Created', 'Namespace', 'Reason', 'What happened', 'Job'];
  if (admin) headers.push('Actions');
  const rows = page.items.map((d) => {
    const cells = [
      h('a', { href: `#/dlq/${d.id}`, 'aria-label': `Dead letter ${d.id}` }, `#${d.id}`),
      ago(d.createdAt),
      d.namespace || h('span', { class: 'muted' }, 'unknown'),
      h('span', null, reasonBadge(d.reason), d.requeuedAt ? h('span', { class: 'badge muted' }, 'requeued') : null),
      h('span', { class: 'message' }, d.message),
      d.jobId ? jobLink(d.jobId, 'job') : h('span', { class: 'muted' }, 'no job'),
    ];
    if (admin) {
      cells.push(d.requeuedAt
        ? h('span', { class: 'muted' }, 'requeued ', ago(d.requeuedAt))
        : h('div', { class: 'row-actions' }, requeueButton(ctx, d, `dlq-requeue-${d.id}`), purgeButton(ctx, d, `dlq-purge-${d.id}`)));
    }
    return cells;
  });
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    cursor ? h('a', { href: `#/dlq${query(filters)}`, class: 'button quiet' }, '← Oldest') : null,
    page.next ? h('a', { href: `#/dlq${query({ ...filters, cursor: page.next })}`, class: 'button quiet', id: 'dlq-newer' }, 'Newer →') : null);
  return h('section', { class: 'view-dlq' },
    heading('Dead letters', admin
      ? 'Oldest first. Requeue sends a job back in line with its id and history; purge deletes the record.'
      : 'Oldest first. Requeue and purge need a token with the admin role.'),
    form,
    byReason,
    rows.length
      ? table('Dead letters', headers, rows, { hideCaption: true, class: 'dlq' })
      : empty(filters.namespace || filters.reason ? 'No dead letter matches these filters.' : 'No dead letters. Nothing has failed for good.'),
    pager);
}

async function detail(ctx) {
  const d = await get(`/v1/dlq/${encodeURIComponent(ctx.id)}`);
  const admin = ctx.can('admin');
  const actions = admin && !d.requeuedAt
    ? h('div', { class: 'actions' }, requeueButton(ctx, d, 'dlq-requeue'), purgeButton(ctx, d, 'dlq-purge', () => ctx.navigate('dlq')))
    : null;
  const problems = d.problems && d.problems.length
    ? table('Problems', ['Code', 'Where', 'What'], d.problems.map((p) => [reasonBadge(p.code), h('code', null, p.path), p.message]), { class: 'problems' })
    : null;
  return h('section', { class: 'view-dlq-detail' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/dlq' }, '← Dead letters')),
    h('div', { class: 'heading with-actions' }, h('h1', { tabindex: -1 }, `Dead letter #${d.id}`), actions),
    h('dl', { class: 'facts' },
      h('div', null, h('dt', null, 'Reason'), h('dd', null, reasonBadge(d.reason))),
      h('div', null, h('dt', null, 'Message'), h('dd', null, d.message)),
      h('div', null, h('dt', null, 'Namespace'), h('dd', null, d.namespace || 'unknown')),
      h('div', null, h('dt', null, 'Priority'), h('dd', null, d.priority || '—')),
      h('div', null, h('dt', null, 'Job'), h('dd', null, d.jobId ? jobLink(d.jobId, d.jobId) : 'none (the message never became a job)')),
      h('div', null, h('dt', null, 'Created'), h('dd', null, at(d.createdAt))),
      h('div', null, h('dt', null, 'Requeued'), h('dd', null, d.requeuedAt ? at(d.requeuedAt) : 'no')),
      h('div', null, h('dt', null, 'Routing key'), h('dd', null, d.routingKey ? h('code', null, d.routingKey) : '—')),
      h('div', null, h('dt', null, 'Body'), h('dd', null, `${d.bodyBytes} bytes${d.bodyTruncated ? ' (stored cut short)' : ''}`))),
    problems,
    h('section', { 'aria-labelledby': 'dlq-body' },
      h('h2', { id: 'dlq-body' }, 'Body'),
      d.body === null || d.body === undefined
        ? empty('The body is not UTF-8 text.')
        : h('pre', { class: 'body', tabindex: 0, 'aria-label': 'Message body' }, d.body)));
}
