// The operator page's entry point: sign in and out, the views by URL fragment
// (#/accounts, #/accounts/{A}, #/accounts/{A}/webhooks/{ID}), notices, and the status
// bar. Reloading the page signs out: the token lives in memory only (api.js).

import { renderAccounts } from './accounts.js';
import { createApi } from './api.js';
import { renderWebhook } from './attempts.js';
import { el, replace } from './dom.js';
import { startStatus } from './status.js';
import { renderAccount } from './webhooks.js';

const PAGE_TITLE = 'Piston Webhooks · Admin';

/** How long a notice stays (errors stay until dismissed). */
const NOTICE_MS = 10000;

const loginView = document.getElementById('login-view');
const loginForm = document.getElementById('login-form');
const loginError = document.getElementById('login-error');
const keyInput = document.getElementById('api-key');
const appView = document.getElementById('app-view');
const session = document.getElementById('session');
const sessionName = document.getElementById('session-name');
const notices = document.getElementById('notices');

/** The status bar while signed in (`{stop, refresh}`), else null. */
let status = null;

const api = createApi({
  onSessionEnded: () => signedOut('Your session has ended (the token expired or was revoked). Sign in again.'),
});

/** What every view gets. */
const ctx = {
  api,
  session: null,
  notify,
  setTitle: (text) => {
    document.title = `${text} · ${PAGE_TITLE}`;
  },
  /** Reads the status bar's figures again (after the view loaded fresh data). */
  refreshStatus: () => {
    if (status !== null) status.refresh();
  },
};

/** Shows a notice; kind `error` is announced at once and stays until dismissed. */
function notify(message, kind = 'info') {
  const close = el('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss' }, '×');
  const notice = el('div', {
    class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : null,
  }, el('span', { class: 'notice-text' }, message), close);
  close.addEventListener('click', () => notice.remove());
  notices.append(notice);
  while (notices.children.length > 4) notices.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => notice.remove(), NOTICE_MS);
}

function signedOut(reason) {
  ctx.session = null;
  if (status !== null) status.stop();
  status = null;
  session.hidden = true;
  appView.hidden = true;
  replace(appView);
  loginView.hidden = false;
  replace(loginError, reason ?? '');
  document.title = PAGE_TITLE;
  keyInput.focus();
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  replace(loginError);
  const key = keyInput.value.trim();
  if (key === '') {
    replace(loginError, 'Enter an API key.');
    keyInput.focus();
    return;
  }
  const button = document.getElementById('sign-in');
  button.disabled = true;
  try {
    ctx.session = await api.signIn(key);
    keyInput.value = '';
    sessionName.textContent = ctx.session.account_name || ctx.session.account_id;
    session.hidden = false;
    loginView.hidden = true;
    appView.hidden = false;
    status = startStatus(api);
    route();
  } catch (error) {
    replace(loginError, error.status === 401
      ? 'That API key was not accepted.'
      : error.describe('Sign-in failed'));
    keyInput.select();
  } finally {
    button.disabled = false;
  }
});

document.getElementById('sign-out').addEventListener('click', () => {
  api.signOut();
  history.replaceState(null, '', location.pathname + location.search);
  signedOut('Signed out.');
});

/** Shows the view the URL fragment names (the accounts tree by default). */
async function route() {
  if (ctx.session === null) return;
  const hash = location.hash;
  // Other fragments (the skip link's #main) are in-page anchors, not views.
  if (hash !== '' && !hash.startsWith('#/')) return;
  const parts = hash.slice(2).split('/').filter((p) => p !== '').map(decodeURIComponent);
  const view = el('div', { class: 'view' });
  replace(appView, view);
  document.title = PAGE_TITLE;
  if (parts[0] === 'accounts' && parts.length === 2) {
    await renderAccount(ctx, view, parts[1]);
  } else if (parts[0] === 'accounts' && parts.length === 4 && parts[2] === 'webhooks') {
    await renderWebhook(ctx, view, parts[1], parts[3]);
  } else {
    renderAccounts(ctx, view);
  }
  const title = view.querySelector('h1');
  if (title !== null && document.activeElement === document.body) title.focus();
}

window.addEventListener('hashchange', () => {
  route().then(() => {
    const title = appView.querySelector('h1');
    if (title !== null) title.focus();
  });
});

signedOut('');
