// Formatting: times (relative, with the exact instant in the element), durations, amounts,
// and the badges for states, priorities and reasons.

import { h } from './dom.js';

/** "3 min" for seconds. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60 ? `${s % 60} s` : ''}`.trim();
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60 ? `${m % 60} min` : ''}`.trim();
  return `${Math.floor(hrs / 24)} d ${hrs % 24 ? `${hrs % 24} h` : ''}`.trim();
}

/** A `<time>` showing how long ago (or until) `iso` is, the exact UTC instant as its title. */
export function ago(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const t = new Date(iso);
  const delta = (Date.now() - t.getTime()) / 1000;
  const text = delta >= 0 ? `${duration(delta)} ago` : `in ${duration(-delta)}`;
  return h('time', { datetime: t.toISOString(), title: t.toISOString() }, text);
}

/** A `<time>` with the local date and time of `iso`. */
export function at(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const t = new Date(iso);
  return h('time', { datetime: t.toISOString(), title: t.toISOString() }, t.toLocaleString());
}

/** CPU in cores from millicores: "3.5". */
export function cores(millis) {
  const c = millis / 1000;
  return Number.isInteger(c) ? String(c) : c.toFixed(c < 10 ? 2 : 1).replace(/0$/, '');
}

/** Bytes in binary units: "12.5 GiB". */
export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

const STATE_TONE = {
  queued: 'info', waiting: 'warn', submitted: 'info', running: 'ok', succeeded: 'ok',
  failed: 'bad', retrying: 'warn', dead: 'bad', cancelled: 'muted',
};

/** A job state's badge. */
export function stateBadge(state) {
  return h('span', { class: `badge ${STATE_TONE[state] || 'muted'}` }, state);
}

/** A priority's badge. */
export function priorityBadge(priority) {
  return h('span', { class: `badge ${priority === 'high' ? 'high' : 'plain'}` }, priority);
}

/** A reason code's badge (dead-letter reasons, waiting reasons). */
export function reasonBadge(reason) {
  if (!reason) return h('span', { class: 'muted' }, '—');
  return h('span', { class: 'badge reason' }, reason);
}

/** A job's link by id, showing its name (or the id). */
export function jobLink(id, name) {
  return h('a', { href: `#/jobs/${encodeURIComponent(id)}` }, name || id);
}

/** A usage bar: `parts` ([value, class, label]) over `total`, with the figures as text. */
export function bar(parts, total, label) {
  const pct = (v) => (total > 0 ? Math.min(100, (100 * v) / total) : 0);
  // Widths through the CSSOM: the Content-Security-Policy forbids style attributes.
  const fills = parts.map(([v, cls]) => {
    const span = h('span', { class: `fill ${cls}` });
    span.style.width = `${pct(v)}%`;
    return span;
  });
  return h('div', { class: 'bar', role: 'img', 'aria-label': label, title: label }, fills);
}
