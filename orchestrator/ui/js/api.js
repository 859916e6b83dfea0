// The API client: every call carries the tab's token (sessionStorage: gone when the tab
// closes, never sent anywhere but this origin's /v1 routes). Errors become ApiError with the
// API's code and sentence, so views can show them as they are.

const KEY = 'orchestrator.console.token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

/** Calls `path` (under this origin) and returns the parsed JSON answer. */
export async function call(method, path, body, tokenOverride) {
  const headers = { Accept: 'application/json' };
  const t = tokenOverride ?? token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'unreachable', 'The orchestrator did not answer; is it running?');
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  if (!response.ok) {
    const code = (json && json.error) || `http-${response.status}`;
    const message = (json && json.message) || `HTTP ${response.status}`;
    throw new ApiError(response.status, code, message);
  }
  return json;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);

/** A query string of the non-empty entries, `?a=1&b=2` or ''. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
