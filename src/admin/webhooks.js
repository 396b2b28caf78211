// The account view: an account's webhooks with their state, enable/disable for each,
// and the bulk re-enable of the auto-disabled ones (`PATCH …/webhooks {"re-enable":true}`).

import { seg } from './api.js';
import { actionButton, badge, el, placeholder, replace, table, viewTitle } from './dom.js';
import { plural } from './format.js';

/** The state of a webhook summary or document, as a badge. */
export function stateBadge(hook) {
  if (hook.enabled !== false) return badge('enabled', 'ok', { dataset: { state: 'enabled' } });
  if (hook.disable_reason) {
    return badge('auto-disabled', 'bad', { dataset: { state: 'auto-disabled' }, title: hook.disable_reason });
  }
  return badge('disabled', 'warn', { dataset: { state: 'disabled' } });
}

/** A button that enables or disables one webhook, then calls `done`. */
export function toggleButton(ctx, accountId, hook, done) {
  const enable = hook.enabled === false;
  const name = hook.name || hook.id;
  return actionButton(enable ? 'Enable' : 'Disable', async () => {
    try {
      await ctx.api.patch(`v2/accounts/${seg(accountId)}/webhooks/${seg(hook.id)}`,
        { enabled: enable });
      ctx.notify(`Webhook “${name}” ${enable ? 'enabled' : 'disabled'}.`);
      await done();
    } catch (error) {
      ctx.notify(error.describe(`Could not ${enable ? 'enable' : 'disable'} “${name}”`), 'error');
    }
  }, {
    class: enable ? 'primary small' : 'small',
    'aria-label': `${enable ? 'Enable' : 'Disable'} webhook ${name}`,
    dataset: { action: enable ? 'enable' : 'disable' },
  });
}

/** Renders the view of `accountId` into `view`. */
export async function renderAccount(ctx, view, accountId) {
  const title = viewTitle('Account', 'account-title');
  const crumbs = el('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    el('a', { href: '#/accounts' }, 'Accounts'));
  const summary = el('p', { class: 'muted lead' });
  const filter = el('select', { id: 'webhook-filter' },
    el('option', { value: 'all' }, 'All webhooks'),
    el('option', { value: 'disabled' }, 'Disabled only'),
    el('option', { value: 'enabled' }, 'Enabled only'));
  const listing = el('div', { class: 'card' }, placeholder('Loading webhooks…'));
  let hooks = [];

  const reenable = actionButton('Re-enable auto-disabled', async () => {
    try {
      await ctx.api.patch(`v2/accounts/${seg(accountId)}/webhooks`, { 're-enable': true });
      ctx.notify('Auto-disabled webhooks re-enabled.');
      await load();
    } catch (error) {
      ctx.notify(error.describe('Could not re-enable'), 'error');
    }
  }, { id: 'reenable-all', class: 'primary' });

  const show = () => {
    const wanted = filter.value;
    const shown = hooks.filter((h) => wanted === 'all'
      || (wanted === 'disabled') === (h.enabled === false));
    const auto = hooks.filter((h) => h.enabled === false && h.disable_reason).length;
    const disabled = hooks.filter((h) => h.enabled === false).length;
    reenable.disabled = auto === 0;
    reenable.title = auto === 0 ? 'No webhook of this account is auto-disabled' : '';
    replace(summary, `${plural(hooks.length, 'webhook')}, ${disabled} disabled`,
      auto === 0 ? '.' : ` (${auto} by too many failures).`);
    if (hooks.length === 0) {
      replace(listing, placeholder('This account has no webhooks.'));
      return;
    }
    replace(listing, table(`Webhooks of this account (${filter.selectedOptions[0].text})`,
      ['Name', 'Event', 'URI', 'State', 'Action'],
      shown.map((hook) => el('tr', { dataset: { webhookId: hook.id } },
        el('td', {}, el('a', {
          href: `#/accounts/${seg(accountId)}/webhooks/${seg(hook.id)}`, class: 'hook-link',
        }, hook.name || '(unnamed)')),
        el('td', {}, el('code', {}, hook.hook ?? '')),
        el('td', { class: 'uri' }, hook.uri ?? ''),
        el('td', {}, stateBadge(hook),
          hook.disable_reason ? el('span', { class: 'reason' }, hook.disable_reason) : null),
        el('td', {}, toggleButton(ctx, accountId, hook, load)))),
      { class: 'webhooks' }));
  };

  async function load() {
    ctx.refreshStatus();
    try {
      hooks = (await ctx.api.page(`v2/accounts/${seg(accountId)}/webhooks`,
        { paginate: 'false', ascending: 'true' })).items;
      show();
    } catch (error) {
      replace(listing, placeholder(error.describe('Could not list webhooks'), 'error'));
    }
  }

  filter.addEventListener('change', show);
  replace(view,
    crumbs,
    el('div', { class: 'view-head' },
      title,
      el('div', { class: 'toolbar' },
        el('label', { for: 'webhook-filter', class: 'visually-hidden' }, 'Show'),
        filter,
        reenable,
        actionButton('Refresh', load))),
    el('p', { class: 'id-line' }, 'Account id ', el('code', { class: 'id' }, accountId)),
    summary,
    listing);

  ctx.api.get(`v2/accounts/${seg(accountId)}`).then((envelope) => {
    const name = envelope.data.name || '(unnamed)';
    title.textContent = name;
    ctx.setTitle(name);
    crumbs.append(' › ', el('span', { 'aria-current': 'page' }, name));
  }).catch((error) => {
    title.textContent = 'Unknown account';
    ctx.notify(error.describe('Could not read the account'), 'error');
  });
  await load();
}
