// Schedules: each cron schedule with its zone, its next fires (as wall-clock times in that
// zone, and how far away), and pause/resume for an admin.

import { get, post, query } from '../api.js';
import { h, table, empty } from '../dom.js';
import { ago } from '../format.js';
import { heading, namespaceOptions, filterForm, select } from './common.js';

/** "2026-12-04T02:00:00" in Europe/Paris → "2026-12-04 02:00". */
function wallClock(nominal) {
  return nominal.replace('T', ' ').replace(/:00$/, '');
}

export async function render(ctx) {
  const namespace = ctx.params.get('namespace') || '';
  const data = await get(`/v1/schedules${query({ namespace, fires: 3 })}`);
  const admin = ctx.can('admin');
  const headers = ['Name', 'Namespace', 'Cron', 'Time zone', 'State', 'Next fires (in its zone)', 'Last run', 'Missed'];
  if (admin) headers.push('Actions');
  const rows = data.items.map((s) => {
    const fires = s.suspended || !s.nextFires.length
      ? h('span', { class: 'muted' }, s.suspended ? 'paused: none' : 'none')
      : h('ul', { class: 'plain fires' }, s.nextFires.map((f) => h('li', null, h('span', { class: 'wall' }, wallClock(f.nominal)), ' ', h('span', { class: 'muted' }, '(', ago(f.at), ')'))));
    const cells = [
      h('strong', null, s.name),
      s.namespace,
      h('code', null, s.cron),
      s.timeZone,
      h('span', { class: `badge ${s.suspended ? 'muted' : 'ok'}` }, s.suspended ? 'paused' : 'active'),
      fires,
      s.lastScheduledAt ? h('span', { class: 'wall' }, wallClock(s.lastScheduledAt)) : h('span', { class: 'muted' }, 'never'),
      String(s.missedTotal),
    ];
    if (admin) {
      const verb = s.suspended ? 'resume' : 'pause';
      cells.push(h('button', { type: 'button', class: s.suspended ? 'primary' : 'secondary', id: `schedule-${verb}-${s.name}`,
        'aria-label': `${s.suspended ? 'Resume' : 'Pause'} ${s.name}`,
        on: { click: () => ctx.act(`Schedule ${s.name} ${s.suspended ? 'resumed' : 'paused'}.`, () => post(`/v1/schedules/${encodeURIComponent(s.name)}/${verb}`)) } },
      s.suspended ? 'Resume' : 'Pause'));
    }
    return cells;
  });
  return h('section', { class: 'view-schedules' },
    heading('Schedules', 'Cron schedules fire jobs into the same queues as everyone\'s. Times are wall-clock times in each schedule\'s zone.'),
    filterForm(ctx, 'schedules', 'schedules', [
      ['Namespace', 'namespace', select('namespace', namespaceOptions(ctx.me), namespace)],
    ]),
    rows.length ? table('Schedules', headers, rows, { hideCaption: true, class: 'schedules' }) : empty('No schedule.'));
}
