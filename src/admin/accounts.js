// The accounts view: the tree below the signed-in account (children loaded when a node
// is opened, a page at a time), each account with its webhook and disabled counts, and
// a search over every descendant by name or id.

import { seg } from './api.js';
import { actionButton, badge, el, placeholder, replace, viewTitle } from './dom.js';
import { plural } from './format.js';

/** Children shown per page under one node. */
const CHILDREN_PAGE = 50;

/** Search results shown at most. */
const SEARCH_SHOWN = 50;

/** Renders the view into `view`. */
export function renderAccounts(ctx, view) {
  const root = { id: ctx.session.account_id, name: ctx.session.account_name };
  const tree = el('ul', { class: 'tree', 'aria-label': 'Accounts' });
  const results = el('div', { class: 'search-results', 'aria-live': 'polite' });
  let descendants = null;

  const search = el('input', {
    id: 'account-search', type: 'search', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'name or id',
  });
  const searchForm = el('form', {
    class: 'inline-form', role: 'search',
    on: {
      submit: async (event) => {
        event.preventDefault();
        const query = search.value.trim().toLowerCase();
        if (query === '') {
          replace(results);
          return;
        }
        replace(results, placeholder('Searching…'));
        try {
          if (descendants === null) {
            descendants = (await ctx.api.page(`v2/accounts/${seg(root.id)}/descendants`,
              { paginate: 'false' })).items;
          }
        } catch (error) {
          replace(results, placeholder(error.describe('Search failed'), 'error'));
          return;
        }
        showMatches(results, descendants, query);
      },
    },
  },
  el('label', { for: 'account-search' }, 'Find an account'),
  search,
  el('button', { type: 'submit' }, 'Find'));

  const rebuild = () => {
    ctx.refreshStatus();
    descendants = null;
    replace(tree, accountNode(ctx, root, { open: true }));
  };

  replace(view,
    el('div', { class: 'view-head' },
      viewTitle('Accounts', 'accounts-title'),
      el('div', { class: 'toolbar' },
        searchForm,
        actionButton('Refresh', async () => rebuild(), { id: 'accounts-refresh' }))),
    el('p', { class: 'muted lead' },
      'Every account you can act on, with its webhooks and how many are disabled. ',
      'Open an account to manage its webhooks.'),
    results,
    el('div', { class: 'card' }, tree));
  rebuild();
}

function showMatches(results, accounts, query) {
  const matches = accounts.filter((a) => String(a.name ?? '').toLowerCase().includes(query)
    || String(a.id).includes(query));
  replace(results,
    el('p', {}, `${plural(matches.length, 'account')} match.`),
    matches.length === 0 ? null : el('ul', { class: 'plain-list' },
      matches.slice(0, SEARCH_SHOWN).map((a) => el('li', {},
        el('a', { href: `#/accounts/${seg(a.id)}` }, a.name || '(unnamed)'),
        ' ',
        el('code', { class: 'id' }, a.id)))),
    matches.length > SEARCH_SHOWN
      ? el('p', { class: 'muted' }, `Showing the first ${SEARCH_SHOWN}; refine the search.`)
      : null);
}

/** One account in the tree: its row, and its children once opened. */
function accountNode(ctx, account, { open = false } = {}) {
  const name = account.name || '(unnamed)';
  const children = el('ul', { class: 'tree-children', role: 'group' });
  children.hidden = true;
  const toggle = el('button', {
    type: 'button', class: 'toggle', 'aria-expanded': 'false',
    'aria-label': `Sub-accounts of ${name}`,
  });
  const counts = el('span', { class: 'counts' }, badge('…'));
  const node = el('li', { class: 'tree-node', dataset: { accountId: account.id } },
    el('div', { class: 'tree-row' },
      toggle,
      el('a', { href: `#/accounts/${seg(account.id)}`, class: 'account-link' }, name),
      el('code', { class: 'id' }, account.id),
      counts),
    children);

  let loaded = false;
  const setOpen = async (wanted) => {
    toggle.setAttribute('aria-expanded', String(wanted));
    children.hidden = !wanted;
    if (wanted && !loaded) {
      loaded = true;
      await loadChildren(ctx, account.id, children, undefined);
    }
  };
  toggle.addEventListener('click', () => setOpen(toggle.getAttribute('aria-expanded') !== 'true'));
  loadCounts(ctx, account.id, counts);
  if (open) setOpen(true);
  return node;
}

/** Appends one page of `accountId`'s children to `list`, with a "more" button if any. */
async function loadChildren(ctx, accountId, list, startKey) {
  const loading = el('li', { class: 'muted' }, 'Loading…');
  list.append(loading);
  try {
    const page = await ctx.api.page(`v2/accounts/${seg(accountId)}/children`,
      { page_size: CHILDREN_PAGE, start_key: startKey });
    loading.remove();
    if (page.items.length === 0 && startKey === undefined) {
      list.append(el('li', { class: 'muted tree-empty' }, 'No sub-accounts'));
    }
    for (const child of page.items) list.append(accountNode(ctx, child));
    if (page.next) {
      const more = el('li', { class: 'tree-more' });
      more.append(actionButton('Show more sub-accounts', async () => {
        more.remove();
        await loadChildren(ctx, accountId, list, page.next);
      }));
      list.append(more);
    }
  } catch (error) {
    replace(loading, error.describe('Could not list sub-accounts'));
    loading.className = 'error';
  }
}

/** Fills `target` with the account's webhook count and disabled count. */
async function loadCounts(ctx, accountId, target) {
  try {
    const { items } = await ctx.api.page(`v2/accounts/${seg(accountId)}/webhooks`,
      { paginate: 'false' });
    const disabled = items.filter((h) => h.enabled === false).length;
    target.dataset.webhooks = String(items.length);
    target.dataset.disabled = String(disabled);
    replace(target,
      badge(plural(items.length, 'webhook'), items.length === 0 ? 'muted' : 'info'),
      disabled === 0 ? null : badge(`${disabled} disabled`, 'bad'));
  } catch (error) {
    replace(target, badge('counts unavailable', 'muted', { title: error.message }));
  }
}
