// Jobs: newest first, filtered by namespace, state, priority and name (a prefix), a page at a
// time. The filters and the page cursor are in the URL.

import { get, query } from '../api.js';
import { h, table, empty } from '../dom.js';
import { ago, stateBadge, priorityBadge, reasonBadge, jobLink } from '../format.js';
import { heading, namespaceOptions, filterForm, select } from './common.js';

export const STATES = ['queued', 'waiting', 'submitted', 'running', 'retrying', 'succeeded', 'failed', 'dead', 'cancelled'];
const PAGE = 25;

export async function render(ctx) {
  const p = ctx.params;
  const filters = {
    namespace: p.get('namespace') || '',
    state: p.get('state') || '',
    priority: p.get('priority') || '',
    name: p.get('name') || '',
  };
  const cursor = p.get('cursor') || '';
  const limit = p.get('limit') || '';
  const page = await get(`/v1/jobs${query({ ...filters, cursor, limit: limit || PAGE })}`);
  const nameInput = h('input', { type: 'search', value: filters.name, placeholder: 'name starts with…', autocomplete: 'off', spellcheck: 'false', maxlength: 53 });
  const form = filterForm(ctx, 'jobs', 'jobs', [
    ['Namespace', 'namespace', select('namespace', namespaceOptions(ctx.me), filters.namespace)],
    ['State', 'state', select('state', [['', 'Any state'], ...STATES.map((s) => [s, s])], filters.state)],
    ['Priority', 'priority', select('priority', [['', 'Any priority'], ['high', 'high'], ['normal', 'normal']], filters.priority)],
    ['Name', 'name', nameInput],
  ]);
  const rows = page.items.map((j) => [
    jobLink(j.id, j.name),
    j.namespace,
    priorityBadge(j.priority),
    stateBadge(j.state),
    reasonBadge(j.stateReason),
    String(j.attempt),
    ago(j.enqueuedAt),
    ago(j.updatedAt),
  ]);
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    cursor ? h('a', { href: `#/jobs${query({ ...filters, limit })}`, class: 'button quiet', id: 'jobs-newest' }, '← Newest') : null,
    page.next ? h('a', { href: `#/jobs${query({ ...filters, limit, cursor: page.next })}`, class: 'button quiet', id: 'jobs-older' }, 'Older →') : null);
  return h('section', { class: 'view-jobs' },
    heading('Jobs', cursor ? 'Older jobs, newest first.' : 'Newest first.'),
    form,
    rows.length
      ? table('Jobs', ['Name', 'Namespace', 'Priority', 'State', 'Reason', 'Attempt', 'Enqueued', 'Updated'], rows, { hideCaption: true, class: 'jobs' })
      : empty(Object.values(filters).some(Boolean) ? 'No job matches these filters.' : 'No job yet.'),
    pager);
}
