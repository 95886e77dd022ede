// The HTTP API client: bearer token kept in localStorage, one refresh attempt on 401.

const TOKEN_KEY = 'nox.access_token'
const REFRESH_KEY = 'nox.refresh_token'

export class ApiError extends Error {
  constructor (status, body, text) {
    const err = body && body.error
    let message = (err && err.message) || text || `HTTP ${status}`
    if (err && Array.isArray(err.fields) && err.fields.length) {
      message += ': ' + err.fields.map((f) => `${f.field}: ${f.message}`).join('; ')
    }
    super(message)
    this.status = status
    this.code = err && err.code
  }
}

export function getToken () { return localStorage.getItem(TOKEN_KEY) }

export function setTokens ({ access_token: access, refresh_token: refresh }) {
  if (access) localStorage.setItem(TOKEN_KEY, access)
  if (refresh) localStorage.setItem(REFRESH_KEY, refresh)
}

export function clearTokens () {
  localStorage.removeItem(TOKEN_KEY)
  localStorage.removeItem(REFRESH_KEY)
}

/** Seconds until the access token expires (Infinity when it carries no `exp`). */
function tokenTtl (token) {
  try {
    const payload = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')))
    return typeof payload.exp === 'number' ? payload.exp - Date.now() / 1000 : Infinity
  } catch {
    return Infinity
  }
}

let refreshing = null

/** Trades the refresh token for a new pair; resolves to true on success. */
export function refreshTokens () {
  if (refreshing) return refreshing
  const refresh = localStorage.getItem(REFRESH_KEY)
  if (!refresh) return Promise.resolve(false)
  refreshing = (async () => {
    try {
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: refresh })
      })
      if (!res.ok) return false
      setTokens(await res.json())
      return true
    } catch {
      return false
    } finally {
      refreshing = null
    }
  })()
  return refreshing
}

/** A current access token, refreshed first when it expires within a minute. */
export async function freshToken () {
  const token = getToken()
  if (token && tokenTtl(token) < 60) await refreshTokens()
  return getToken()
}

export async function api (method, path, body) {
  const send = () => {
    const headers = {}
    const token = getToken()
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    return fetch('/api/v1' + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    })
  }
  let res = await send()
  if (res.status === 401 && getToken() && !path.startsWith('/auth/') && await refreshTokens()) {
    res = await send()
  }
  const text = await res.text()
  let json = null
  try { json = text ? JSON.parse(text) : null } catch {}
  if (!res.ok) throw new ApiError(res.status, json, text)
  return json
}
