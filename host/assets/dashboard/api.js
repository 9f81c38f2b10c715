// The dashboard's one way to the host's /v1/ API. The session is the HttpOnly cookie set
// by /login (same origin, sent automatically); a 401 (no session, or one that has ended)
// sends the browser back to /login.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

/** One API call; resolves to the JSON body, rejects with the API's error message. */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined || method !== 'GET') {
    // The API takes writes as JSON only, an empty one too: no other site's page can send
    // that type without the API's consent.
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', `cannot reach the host (${err.message})`);
  }
  if (response.status === 401) {
    window.location.assign('/login');
    throw new ApiError(401, 'unauthorized', 'this host requires its token: sign in');
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const code = (data && data.code) || 'http_error';
    const message = (data && data.message) || `HTTP ${response.status}`;
    throw new ApiError(response.status, code, message, data && data.details);
  }
  return data;
}
