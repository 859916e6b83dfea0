// Cluster: per pool what the nodes offer, what bound pods request, what the capacity ledger
// has promised to admitted applications whose pods are not all bound yet, and placeholder
// pods; then the namespace quotas.

import { get } from '../api.js';
import { h, table, empty } from '../dom.js';
import { cores, bytes, bar } from '../format.js';
import { heading } from './common.js';

function usage(kind, alloc, requested, reserved, fmt) {
  const free = Math.max(0, alloc - requested - reserved);
  const label = `${kind}: ${fmt(requested)} requested, ${fmt(reserved)} reserved, ${fmt(free)} free of ${fmt(alloc)}`;
  return h('div', { class: 'usage' },
    h('div', { class: 'usage-label' }, h('span', null, kind), h('span', { class: 'muted' }, `${fmt(requested + reserved)} / ${fmt(alloc)}`)),
    bar([[requested, 'requested'], [reserved, 'reserved']], alloc, label));
}

export async function render(ctx) {
  const c = await get('/v1/cluster');
  const pools = c.pools.map((p) => {
    const name = p.name || '(no pool label)';
    const id = `pool-${p.name || 'none'}`;
    const nodes = p.maxNodes !== null && p.maxNodes !== undefined ? `${p.nodes} of at most ${p.maxNodes}` : String(p.nodes);
    return h('article', { class: 'card', 'aria-labelledby': id },
      h('h2', { id }, name),
      h('dl', { class: 'stats' },
        h('div', null, h('dt', null, 'Nodes'), h('dd', null, nodes, p.unschedulable ? h('span', { class: 'muted' }, ` (${p.unschedulable} cordoned)`) : null)),
        h('div', null, h('dt', null, 'Placeholders'), h('dd', null, String(p.placeholders.pods)))),
      usage('CPU', p.allocatable.cpuMillis, p.requested.cpuMillis, p.reserved.cpuMillis, (v) => `${cores(v)} cores`),
      usage('Memory', p.allocatable.memoryBytes, p.requested.memoryBytes, p.reserved.memoryBytes, bytes),
      usage('Pods', p.allocatable.pods, p.requested.pods, p.reserved.pods, String),
      table(`${name} in figures`, ['', 'CPU (cores)', 'Memory', 'Pods'], [
        ['Allocatable', cores(p.allocatable.cpuMillis), bytes(p.allocatable.memoryBytes), String(p.allocatable.pods)],
        ['Requested', cores(p.requested.cpuMillis), bytes(p.requested.memoryBytes), String(p.requested.pods)],
        ['Reserved', cores(p.reserved.cpuMillis), bytes(p.reserved.memoryBytes), String(p.reserved.pods)],
        ['Placeholders', cores(p.placeholders.requested.cpuMillis), bytes(p.placeholders.requested.memoryBytes), String(p.placeholders.requested.pods)],
      ], { hideCaption: true, rowHeader: true, class: 'figures' }));
  });
  const limit = (v, fmt) => (v >= Number.MAX_SAFE_INTEGER ? 'no limit' : fmt(v));
  const quotas = Object.entries(c.quotas);
  return h('section', { class: 'view-cluster' },
    heading('Cluster', `${c.pools.length} pool${c.pools.length === 1 ? '' : 's'} · ${c.reservations} application${c.reservations === 1 ? '' : 's'} holding a reservation · ${c.pendingPlaceholders} placeholder pod${c.pendingPlaceholders === 1 ? '' : 's'} pending`),
    c.ready ? null : h('p', { class: 'callout warn' }, 'The cluster watches have not synced yet: figures are partial.'),
    h('p', { class: 'legend' }, h('span', { class: 'swatch requested' }), ' requested by bound pods ', h('span', { class: 'swatch reserved' }), ' reserved by the ledger ', h('span', { class: 'swatch free' }), ' free'),
    pools.length ? h('div', { class: 'cards' }, pools) : empty('No node and no autoscaling pool.'),
    h('h2', null, 'Namespace quotas'),
    quotas.length
      ? table('Namespace quotas', ['Namespace', 'CPU used / hard', 'Memory used / hard', 'Pods used / hard'], quotas.map(([ns, q]) => [
        ns,
        `${cores(q.used.cpuMillis)} / ${limit(q.hard.cpuMillis, cores)}`,
        `${bytes(q.used.memoryBytes)} / ${limit(q.hard.memoryBytes, bytes)}`,
        `${q.used.pods} / ${limit(q.hard.pods, String)}`,
      ]), { hideCaption: true, rowHeader: true })
      : empty('No ResourceQuota in the namespaces you may see.'));
}
