// DOM building without HTML strings: every piece of data becomes a text node, so nothing a
// job, a message or a dead letter says can ever run as markup or script.

/**
 * h('a', {href: '#/x', class: 'c'}, 'text', child, [more]) — attributes are set with
 * setAttribute (event handlers with `on: {click: fn}`), children are nodes or text.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'on') {
        for (const [event, fn] of Object.entries(v)) el.addEventListener(event, fn);
      } else if (k === 'dataset') {
        Object.assign(el.dataset, v);
      } else if (v === true) {
        el.setAttribute(k, '');
      } else {
        el.setAttribute(k, String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A table with a caption, column headers and rows (arrays of cells). */
export function table(caption, headers, rows, options = {}) {
  return h('div', { class: 'table-wrap', tabindex: options.scroll ? 0 : null, role: options.scroll ? 'region' : null, 'aria-label': options.scroll ? caption : null },
    h('table', { class: options.class || null },
      h('caption', { class: options.hideCaption ? 'sr-only' : null }, caption),
      h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map((c, i) => (i === 0 && options.rowHeader
        ? h('th', { scope: 'row' }, c)
        : h('td', { 'data-label': headers[i] }, c))))))));
}

/** What an empty list says. */
export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

/** An error box with the API's sentence. */
export function errorBox(err) {
  const code = err && err.code ? ` (${err.code})` : '';
  return h('div', { class: 'error', role: 'alert' }, h('strong', null, 'Error: '), `${err.message}${code}`);
}

/** A labelled form control. */
export function field(label, control, id) {
  control.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

/** A `<select>` of options (value, text), the current one selected. */
export function select(name, options, current) {
  return h('select', { name }, options.map(([value, text]) => h('option', { value, selected: value === (current || '') }, text)));
}
