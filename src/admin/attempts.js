// The webhook view: its document and state (with enable/disable), its delivery attempts
// newest first, a page at a time (`start_key` / `next_start_key`), a resend button per
// attempt (`PUT …/attempts/{ID}/resend`), and the recover form (`PUT …/recover`).

import { seg } from './api.js';
import { actionButton, badge, el, placeholder, replace, table, viewTitle } from './dom.js';
import { ago, fromGregorian, parseWhen, rfc3339, utc } from './format.js';
import { stateBadge, toggleButton } from './webhooks.js';

/** Attempts per page. */
const PAGE_SIZE = 25;

/** Renders the view of one webhook into `view`. */
export async function renderWebhook(ctx, view, accountId, hookId) {
  const base = `v2/accounts/${seg(accountId)}/webhooks/${seg(hookId)}`;
  const title = viewTitle('Webhook', 'webhook-title');
  const crumbs = el('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
    el('a', { href: '#/accounts' }, 'Accounts'), ' › ',
    el('a', { href: `#/accounts/${seg(accountId)}`, id: 'crumb-account' }, 'Account'), ' › ',
    el('span', { 'aria-current': 'page' }, 'Webhook'));
  const details = el('div', { class: 'card details' }, placeholder('Loading…'));
  const attempts = attemptsPanel(ctx, base);

  async function loadHook() {
    try {
      const hook = (await ctx.api.get(base)).data;
      const name = hook.name || '(unnamed)';
      title.textContent = name;
      ctx.setTitle(name);
      crumbs.lastElementChild.textContent = name;
      replace(details,
        el('dl', { class: 'facts' },
          fact('State', el('span', { id: 'webhook-state' }, stateBadge(hook),
            hook.disable_reason ? el('span', { class: 'reason' }, hook.disable_reason) : null)),
          fact('Event', el('code', {}, hook.hook ?? '')),
          fact('URI', el('span', { class: 'uri' }, hook.uri ?? '')),
          fact('Method', (hook.http_verb ?? 'post').toUpperCase()),
          fact('Format', hook.format ?? 'form-data'),
          fact('Retries', String(hook.retries ?? '')),
          fact('Id', el('code', { class: 'id' }, hook.id))),
        el('div', { class: 'toolbar' },
          toggleButton(ctx, accountId, hook, async () => {
            await loadHook();
            await attempts.load();
          })));
    } catch (error) {
      replace(details, placeholder(error.describe('Could not read the webhook'), 'error'));
    }
  }

  replace(view,
    crumbs,
    el('div', { class: 'view-head' }, title),
    details,
    attempts.panel,
    recoverPanel(ctx, base, attempts.load));

  ctx.api.get(`v2/accounts/${seg(accountId)}`)
    .then((envelope) => {
      document.getElementById('crumb-account').textContent = envelope.data.name || '(unnamed)';
    })
    .catch(() => {});
  await Promise.all([loadHook(), attempts.load()]);
}

function fact(term, value) {
  return el('div', {}, el('dt', {}, term), el('dd', {}, value));
}

/** The attempts table with its pager; `load()` shows the current page again. */
function attemptsPanel(ctx, base) {
  const body = el('div', { id: 'attempts' }, placeholder('Loading attempts…'));
  const position = el('span', { class: 'muted', 'aria-live': 'polite' });
  let startKey;
  const earlier = [];
  let next;

  // The pager's buttons are disabled while a page loads, then as the page allows.
  const pagerButton = (label, id, move) => el('button', {
    type: 'button', class: 'small', id, disabled: true,
    on: {
      click: async () => {
        move();
        await load();
      },
    },
  }, label);
  const newer = pagerButton('← Newer', 'attempts-newer', () => {
    startKey = earlier.pop();
  });
  const older = pagerButton('Older →', 'attempts-older', () => {
    earlier.push(startKey);
    startKey = next;
  });

  async function load() {
    ctx.refreshStatus();
    newer.disabled = true;
    older.disabled = true;
    try {
      const page = await ctx.api.page(`${base}/attempts`,
        { page_size: PAGE_SIZE, start_key: startKey });
      next = page.next;
      replace(position, `Page ${earlier.length + 1}`);
      replace(body, page.items.length === 0
        ? placeholder('No delivery attempts yet.')
        : table('Delivery attempts, newest first',
          ['Time', 'Result', 'Response', 'Event', 'Retries left', 'Latency', 'Action'],
          page.items.map((attempt) => attemptRow(ctx, base, attempt, load)),
          { class: 'attempts' }));
    } catch (error) {
      replace(body, placeholder(error.describe('Could not list attempts'), 'error'));
    }
    newer.disabled = earlier.length === 0;
    older.disabled = !next;
  }

  const panel = el('section', { class: 'card', 'aria-labelledby': 'attempts-title' },
    el('div', { class: 'section-head' },
      el('h2', { id: 'attempts-title' }, 'Delivery attempts'),
      el('div', { class: 'toolbar' }, position, newer, older,
        actionButton('Refresh', async () => {
          startKey = undefined;
          earlier.length = 0;
          await load();
        }, { id: 'attempts-refresh', class: 'small' }))),
    body);
  return { panel, load };
}

function attemptRow(ctx, base, attempt, reload) {
  const when = fromGregorian(attempt.timestamp);
  const ok = attempt.result === 'success';
  const response = attempt.response_code !== undefined
    ? `HTTP ${attempt.response_code}`
    : (attempt.client_error || attempt.reason || '');
  const detail = attempt.reason && attempt.response_code !== undefined ? attempt.reason : null;
  return el('tr', { dataset: { attemptId: attempt.id ?? '', result: attempt.result } },
    el('td', {}, el('time', { datetime: when.toISOString(), title: utc(when) }, utc(when)),
      el('span', { class: 'muted small-text' }, ago(when))),
    el('td', {}, badge(attempt.result, ok ? 'ok' : 'bad')),
    el('td', {}, response, detail ? el('span', { class: 'reason' }, detail) : null),
    el('td', {}, el('code', { class: 'id' }, attempt.event_id),
      el('span', { class: 'muted small-text' }, attempt.hook_event)),
    el('td', { class: 'num' }, String(attempt.retries_left ?? '')),
    el('td', { class: 'num' }, attempt.latency_ms === undefined ? '' : `${attempt.latency_ms} ms`),
    el('td', {}, resendButton(ctx, base, attempt, reload)));
}

function resendButton(ctx, base, attempt, reload) {
  if (attempt.id === undefined || attempt.id === null) {
    return el('button', {
      type: 'button', class: 'small', disabled: true,
      title: 'This daemon does not give attempt ids, so it cannot resend',
    }, 'Resend');
  }
  return actionButton('Resend', async () => {
    try {
      const envelope = await ctx.api.put(`${base}/attempts/${seg(attempt.id)}/resend`, {});
      const eventId = (envelope.data && envelope.data.event_id) || attempt.event_id;
      ctx.notify(`Event ${eventId} sent again.`);
      setTimeout(reload, 1000);
    } catch (error) {
      ctx.notify(error.describe('Could not resend'), 'error');
    }
  }, {
    class: 'small',
    'aria-label': `Resend event ${attempt.event_id}`,
    dataset: { action: 'resend' },
  });
}

/** The recover form: since (required) and until (optional), as typed times. */
function recoverPanel(ctx, base, reload) {
  const since = el('input', {
    id: 'recover-since', type: 'text', required: true, spellcheck: 'false',
    autocomplete: 'off', 'aria-describedby': 'recover-help',
  });
  const until = el('input', {
    id: 'recover-until', type: 'text', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'now', 'aria-describedby': 'recover-help',
  });
  const error = el('p', { class: 'form-error', role: 'alert', id: 'recover-error' });
  const sinceAgo = (seconds) => () => {
    since.value = rfc3339(new Date(Date.now() - seconds * 1000));
    since.focus();
  };
  since.value = rfc3339(new Date(Date.now() - 3600 * 1000));

  const submit = el('button', { type: 'submit', class: 'primary', id: 'recover-submit' },
    'Recover');
  const form = el('form', {
    class: 'recover-form', novalidate: true,
    on: {
      submit: async (event) => {
        event.preventDefault();
        replace(error);
        const from = parseWhen(since.value);
        const to = until.value.trim() === '' ? null : parseWhen(until.value);
        if (from === null) {
          replace(error, '“Since” must be RFC 3339 (2026-12-03T17:00:00Z) or Unix seconds.');
          since.focus();
          return;
        }
        if (until.value.trim() !== '' && (to === null || to < from)) {
          replace(error, '“Until” must be a time after “since”, or empty for now.');
          until.focus();
          return;
        }
        submit.disabled = true;
        try {
          const data = to === null ? { since: from } : { since: from, until: to };
          const envelope = await ctx.api.put(`${base}/recover`, data);
          const events = envelope.data ? envelope.data.events : undefined;
          ctx.notify(`Recovery started: ${events ?? 'the'} undelivered event${events === 1 ? '' : 's'} since ${utc(new Date(from * 1000))} queued again.`);
          setTimeout(reload, 1000);
        } catch (failure) {
          replace(error, failure.describe('Could not recover'));
        } finally {
          submit.disabled = false;
        }
      },
    },
  },
  el('div', { class: 'field' },
    el('label', { for: 'recover-since' }, 'Since'), since),
  el('div', { class: 'field' },
    el('label', { for: 'recover-until' }, 'Until (optional)'), until),
  el('div', { class: 'field quick' },
    el('span', { class: 'muted' }, 'Set since to'),
    el('button', { type: 'button', class: 'small ghost', on: { click: sinceAgo(3600) } }, '1 h ago'),
    el('button', { type: 'button', class: 'small ghost', on: { click: sinceAgo(86400) } }, '24 h ago'),
    el('button', { type: 'button', class: 'small ghost', on: { click: sinceAgo(7 * 86400) } }, '7 d ago')),
  submit,
  error);

  return el('section', { class: 'card', 'aria-labelledby': 'recover-title' },
    el('h2', { id: 'recover-title' }, 'Recover undelivered events'),
    el('p', { class: 'muted', id: 'recover-help' },
      'Delivers again, in log order, every event of the window that this webhook matched ',
      'and did not deliver: final failures, and what a disable left undelivered. ',
      'Times are RFC 3339 (', el('code', {}, '2026-12-03T17:00:00Z'), ') or Unix seconds.'),
    form);
}
