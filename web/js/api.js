// fetch() wrapper for haven's JSON API: parses bodies, turns error answers into ApiError with
// the text a person should see, and exposes the cache headers the stream browser reports.

export class ApiError extends Error {
  constructor(status, message, body, meta) {
    super(message);
    this.name = 'ApiError';
    this.status = status;   // 0 = no answer (network)
    this.body = body;
    this.meta = meta;
  }
}

/** The human text of an error body: the seed's `error`, FastAPI's `detail` (string or list). */
export function errorText(body, status) {
  if (body && typeof body === 'object') {
    // Session errors carry a sentence in `error`; upstream errors a code (EUPSTREAM) there.
    if (typeof body.error === 'string' && body.error && body.error !== body.error.toUpperCase()) {
      return body.error;
    }
    if (typeof body.detail === 'string') {
      return body.upstream_error ? `${body.detail} (${body.upstream_error})` : body.detail;
    }
    if (Array.isArray(body.detail)) {
      return body.detail
        .map((d) => `${(d.loc || []).filter((p) => p !== 'body' && p !== 'query').join('.')}: ${d.msg}`)
        .join('; ');
    }
  }
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 200);
  return status ? `HTTP ${status}` : 'haven is unreachable';
}

function metaOf(res) {
  const num = (name) => {
    const v = res.headers.get(name);
    return v == null || v === '' || Number.isNaN(Number(v)) ? null : Number(v);
  };
  return {
    status: res.status,
    cache: res.headers.get('X-Haven-Cache'),             // "fresh" | "stale" | null
    age: num('Age'),                                      // seconds since pump.fun answered
    fetchedAt: res.headers.get('X-Haven-Fetched-At'),
    upstreamError: res.headers.get('X-Haven-Upstream-Error'),
    retryAfter: num('Retry-After'),
  };
}

// The API token, when haven has one (HAVEN_API_TOKEN): opening the player once as /?token=…
// keeps it in this browser and takes it out of the address bar. Empty when there is none.
export const apiToken = (() => {
  try {
    const url = new URL(location.href);
    const given = url.searchParams.get('token');
    if (given) {
      localStorage.setItem('haven.token', given);
      url.searchParams.delete('token');
      history.replaceState(history.state, '', url);
    }
    return given || localStorage.getItem('haven.token') || '';
  } catch { return ''; }   // no localStorage (private mode): the token lasts for this page
})();

/**
 * api('/api/pumpfun/live', {query: {limit: 60}}) → {data, meta}. Throws ApiError on a non-2xx
 * answer or no answer, and lets AbortError through untouched.
 */
export async function api(path, { method = 'GET', body, query, signal } = {}) {
  let url = path;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v != null) qs.set(k, String(v));
    url += (url.includes('?') ? '&' : '?') + qs;
  }
  const init = { method, signal, cache: 'no-store', headers: { Accept: 'application/json' } };
  if (apiToken) init.headers.Authorization = `Bearer ${apiToken}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'haven is unreachable (network error)', null, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  const meta = metaOf(res);
  // The seed's player also checks `success`: a 200 with success:false is still a failure.
  if (!res.ok || (data && typeof data === 'object' && data.success === false)) {
    throw new ApiError(res.status, errorText(data, res.status), data, meta);
  }
  return { data, meta };
}

export const post = (path, body, opts = {}) => api(path, { ...opts, method: 'POST', body });
