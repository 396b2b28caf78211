// Building the page's DOM without HTML strings: every piece of text goes in as a text
// node (textContent), every attribute through setAttribute, so nothing the API returns
// can become markup or script.

/**
 * Creates an element.
 * props: `class`, `text`, `on` ({event: handler}), `dataset` ({key: value}); any other
 * key is an attribute (true → present, false/null/undefined → absent).
 * children: nodes, strings (as text), arrays of those; null and undefined are skipped.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      node.className = value;
    } else if (key === 'text') {
      node.textContent = String(value);
    } else if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) {
        node.addEventListener(event, handler);
      }
    } else if (key === 'dataset') {
      for (const [name, data] of Object.entries(value)) {
        node.dataset[name] = String(data);
      }
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

/** Appends children (nodes, strings as text, nested arrays). */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces every child of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A button that runs `action` once per click, disabled (and marked busy) meanwhile. */
export function actionButton(label, action, props = {}) {
  const button = el('button', { type: 'button', ...props }, label);
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    try {
      await action(button);
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  });
  return button;
}

/** A small coloured label. kind: ok | warn | bad | muted | info. */
export function badge(text, kind = 'muted', props = {}) {
  return el('span', { class: `badge badge-${kind}`, ...props }, text);
}

/** A table with a caption (screen readers announce it) and a header row. */
export function table(caption, headings, rows, props = {}) {
  return el('div', { class: 'table-wrap' },
    el('table', props,
      el('caption', { class: 'visually-hidden' }, caption),
      el('thead', {}, el('tr', {}, headings.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows)));
}

/** A heading that receives focus when its view opens (for keyboard and screen readers). */
export function viewTitle(text, id) {
  return el('h1', { id, tabindex: '-1', class: 'view-title' }, text);
}

/** A line saying something is loading, or failed to. */
export function placeholder(text, kind = 'muted') {
  return el('p', { class: `placeholder ${kind}` }, text);
}
