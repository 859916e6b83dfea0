// Queues: per namespace and priority, the depth (queued + waiting), the oldest wait, and the
// jobs at the front with their position and why they wait.

import { get, query } from '../api.js';
import { h, table, empty } from '../dom.js';
import { duration, ago, stateBadge, priorityBadge, reasonBadge, jobLink } from '../format.js';
import { heading, namespaceOptions, filterForm, select } from './common.js';

export async function render(ctx) {
  const namespace = ctx.params.get('namespace') || '';
  const data = await get(`/v1/queues${query({ namespace, heads: 10 })}`);
  const total = data.queues.reduce((n, q) => n + q.depth, 0);
  const cards = data.queues.map((q) => card(q));
  return h('section', { class: 'view-queues' },
    heading('Queues', `${total} job${total === 1 ? '' : 's'} pending in ${data.queues.length} queue${data.queues.length === 1 ? '' : 's'}. High queues are served before normal ones.`),
    filterForm(ctx, 'queues', 'queues', [
      ['Namespace', 'namespace', select('namespace', namespaceOptions(ctx.me), namespace)],
    ]),
    data.queues.length ? h('div', { class: 'cards' }, cards) : empty('No queue in scope.'));
}

function card(q) {
  const title = `${q.namespace} · ${q.priority}`;
  const id = `queue-${q.namespace}-${q.priority}`;
  const stats = h('dl', { class: 'stats' },
    h('div', null, h('dt', null, 'Depth'), h('dd', { class: 'big' }, String(q.depth))),
    h('div', null, h('dt', null, 'Queued'), h('dd', null, String(q.queued))),
    h('div', null, h('dt', null, 'Waiting'), h('dd', null, String(q.waiting))),
    h('div', null, h('dt', null, 'Oldest wait'), h('dd', null, q.oldestWaitSeconds === null ? '—' : duration(q.oldestWaitSeconds))));
  const heads = q.heads.length
    ? table(`First jobs in ${title}`, ['#', 'Job', 'State', 'Attempt', 'In line since', 'Why it waits'],
      q.heads.map((j) => [
        String(j.position),
        jobLink(j.id, j.name),
        stateBadge(j.state),
        String(j.attempt),
        ago(j.queuedAt),
        j.waitingReason
          ? h('span', { class: 'why' }, reasonBadge(j.waitingReason), ' ', j.waitingMessage || '')
          : h('span', { class: 'muted' }, j.state === 'queued' ? 'not considered yet' : '—'),
      ]), { hideCaption: true, class: 'heads' })
    : empty('Empty: nothing waits here.');
  return h('article', { class: `card${q.depth ? '' : ' idle'}`, 'aria-labelledby': id },
    h('h2', { id }, q.namespace, ' ', priorityBadge(q.priority)),
    stats,
    heads);
}
