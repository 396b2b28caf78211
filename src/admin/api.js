// The page's client of the public API. The session token lives in this module's
// closure only: never in a cookie or the browser's web storage, so nothing the API
// would accept outlives the tab. Paths are relative ("v2/…"), resolved against the
// page's own URL, so the page works behind a reverse proxy's path prefix.

/** An API answer that was not a success, with the Crossbar envelope's message. */
export class ApiError extends Error {
  constructor(status, message, data) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.data = data;
  }

  /** A sentence for a person: what failed and why. */
  describe(what) {
    if (this.status === 0) return `${what}: ${this.message}`;
    if (this.status === 404 && this.data === undefined) {
      return `${what}: this daemon has no such route (404)`;
    }
    return `${what}: ${this.message} (HTTP ${this.status})`;
  }
}

/**
 * Creates the client. `onSessionEnded(error)` is called when a signed-in request is
 * refused with 401 (the token expired or was revoked); the token is forgotten first.
 */
export function createApi({ onSessionEnded }) {
  let token = null;

  async function call(method, path, data) {
    const headers = { Accept: 'application/json' };
    let body;
    if (data !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify({ data });
    }
    if (token !== null) headers['X-Auth-Token'] = token;
    let response;
    try {
      response = await fetch(path, {
        method, headers, body, credentials: 'omit', cache: 'no-store',
      });
    } catch (error) {
      throw new ApiError(0, `the daemon did not answer (${error.message})`);
    }
    let envelope = null;
    try {
      envelope = await response.json();
    } catch {
      envelope = null;
    }
    if (!response.ok) {
      const message = (envelope && envelope.message) || response.statusText || 'request failed';
      const error = new ApiError(response.status, message, envelope ? envelope.data : undefined);
      if (response.status === 401 && token !== null) {
        token = null;
        onSessionEnded(error);
      }
      throw error;
    }
    return envelope || {};
  }

  return {
    /** Exchanges an API key for a token; returns `{account_id, account_name}`. */
    async signIn(apiKey) {
      const envelope = await call('PUT', 'v2/api_auth', { api_key: apiKey });
      if (typeof envelope.auth_token !== 'string' || envelope.auth_token === '') {
        throw new ApiError(500, 'the daemon answered without a token');
      }
      token = envelope.auth_token;
      return envelope.data;
    },

    signOut() {
      token = null;
    },

    get: (path, query) => call('GET', withQuery(path, query)),
    put: (path, data) => call('PUT', path, data),
    patch: (path, data) => call('PATCH', path, data),

    /** One page of a Crossbar listing: `{items, next}` (`next`: the next start key). */
    async page(path, query) {
      const envelope = await call('GET', withQuery(path, query));
      return {
        items: Array.isArray(envelope.data) ? envelope.data : [],
        next: envelope.next_start_key,
      };
    },

    /** A public plain-text resource (`metrics`): `{status, text}`, never throws on HTTP. */
    async text(path) {
      const response = await fetch(path, { credentials: 'omit', cache: 'no-store' });
      return { status: response.status, text: response.ok ? await response.text() : '' };
    },
  };
}

/** `path?k=v&…`, skipping empty values. */
function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

/** A path segment from an id (ids are hex, but nothing is taken on trust). */
export function seg(id) {
  return encodeURIComponent(String(id));
}
