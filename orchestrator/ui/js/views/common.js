// Pieces several views share: the page heading with its refresh time, and the filter form
// whose values live in the URL.

import { h, field, select } from '../dom.js';

/** The view's heading (focused on navigation) and a line under it. */
export function heading(title, subtitle) {
  return h('div', { class: 'heading' },
    h('h1', { tabindex: -1 }, title),
    subtitle ? h('p', { class: 'subtitle' }, subtitle) : null,
    h('p', { class: 'updated muted' }, `Updated ${new Date().toLocaleTimeString()}`));
}

/** Namespace choices for a filter: every namespace the token may see. */
export function namespaceOptions(me) {
  return [['', 'All namespaces'], ...me.namespaces.map((n) => [n, n])];
}

/**
 * A filter form: `controls` are [label, name, element]; submitting navigates to `view` with
 * the form's values (the URL is the state). A reset link clears them.
 */
export function filterForm(ctx, view, idPrefix, controls) {
  const form = h('form', { class: 'filters', 'aria-label': 'Filters', on: { submit: (event) => {
    event.preventDefault();
    const params = {};
    for (const [, name, el] of controls) {
      params[name] = el.type === 'checkbox' ? (el.checked ? 'true' : '') : el.value.trim();
    }
    ctx.navigate(view, params);
  } } },
  controls.map(([label, name, el]) => {
    el.name = name;
    if (el.type === 'checkbox') {
      el.id = `${idPrefix}-${name}`;
      return h('div', { class: 'field check' }, el, h('label', { for: el.id }, label));
    }
    return field(label, el, `${idPrefix}-${name}`);
  }),
  h('div', { class: 'field buttons' },
    h('button', { type: 'submit', class: 'primary', id: `${idPrefix}-apply` }, 'Apply'),
    h('a', { href: `#/${view}`, class: 'button quiet', id: `${idPrefix}-reset` }, 'Reset')));
  return form;
}

export { select };
