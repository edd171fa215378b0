// The console's one way to the gateway: fetch on /v1 with the session cookie, the CSRF
// header on unsafe methods, and every refusal turned into an ApiProblem that carries the
// server's problem+json (RFC 9457) so pages can show its detail in words.

let csrfToken = null;
let sessionEnded = () => {};

export function setCsrf(token) { csrfToken = token; }

// Called when a call made with a session is answered 401: the session is gone.
export function onSessionEnd(callback) { sessionEnded = callback; }

const HEADINGS = {
  0: 'The gateway did not answer.',
  400: 'The request was not understood.',
  401: 'Not signed in.',
  403: 'Refused by the gateway.',
  404: 'Not found.',
  409: 'In conflict with the current state.',
  413: 'Too large.',
  415: 'Wrong kind of content.',
  422: 'Not accepted as entered.',
  429: 'Too many attempts.',
  500: 'The gateway failed.',
  503: 'The gateway cannot do this now.',
};

export class ApiProblem extends Error {
  constructor(status, problem) {
    const body = problem && typeof problem === 'object' ? problem : {};
    const detail = typeof body.detail === 'string' && body.detail
      ? body.detail
      : `The gateway answered ${status}${body.title ? ` ${body.title}` : ''}.`;
    super(detail);
    this.status = status;
    this.problem = body;
    this.detail = detail;
    this.heading = HEADINGS[status] || (status >= 500 ? HEADINGS[500] : `Answered ${status}.`);
    this.field = typeof body.field === 'string' ? body.field : null;
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

// api('POST', '/v1/visibility/grants?dry_run=true', {...}) -> the parsed JSON answer, or
// null for 204; throws ApiProblem for anything but 2xx. {anonymous: true} for calls that
// need no session (signing in): their 401 is the answer, not the end of a session.
// {contentType: 'text/csv'} sends body (a File or Blob) as it is, with that type.
export async function api(method, path, body, { anonymous = false, contentType = null } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
  if (UNSAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined || contentType ? body : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiProblem(0, { detail: `The gateway could not be reached (${error.message}).` });
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const problem = new ApiProblem(response.status, data);
    if (response.status === 401 && !anonymous) sessionEnded(problem);
    throw problem;
  }
  return data;
}

// A path with a query string of the given parameters (empty ones left out).
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}
