// The Nox Sync canvas page: sign in → pick a workspace → co-edit its canvas.
// Routes: `/` (sign in, then the workspace picker) and `/w/{workspace_id}` (the canvas).

import { api, ApiError, clearTokens, getToken, setTokens } from './api.js'
import { field, h, toast } from './dom.js'
import { openCanvas } from './canvas.js'

const root = document.getElementById('app')
let me = null
let closeView = null

function workspaceFromPath () {
  const m = location.pathname.match(/^\/w\/([0-9a-fA-F-]{36})\/?$/)
  return m ? m[1] : null
}

export function navigate (path) {
  if (location.pathname !== path) history.pushState(null, '', path)
  route()
}

window.addEventListener('popstate', () => route())

function show (...children) {
  if (closeView) { closeView(); closeView = null }
  root.replaceChildren(...children)
}

async function loadMe () {
  if (!getToken()) return null
  try {
    return await api('GET', '/me')
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { clearTokens(); return null }
    throw err
  }
}

async function route () {
  try {
    if (!me) me = await loadMe()
  } catch (err) {
    show(h('main', { class: 'panel' }, h('p', { class: 'error' }, `Cannot reach the server: ${err.message}`)))
    return
  }
  if (!me) { show(authView()); return }
  const workspaceId = workspaceFromPath()
  if (workspaceId) {
    const view = h('div', { class: 'canvas-root' })
    show(view)
    closeView = openCanvas(view, { workspaceId, me, onLeave: () => navigate('/'), onSignOut: signOut })
  } else {
    show(pickerView())
  }
}

function signOut () {
  const refresh = localStorage.getItem('nox.refresh_token')
  if (refresh) api('POST', '/auth/logout', { refresh_token: refresh }).catch(() => {})
  clearTokens()
  me = null
  navigate(location.pathname)
}

// ---- sign in / register ----

function authView () {
  let mode = 'login'
  const email = field('Email', { type: 'email', name: 'email', autocomplete: 'email', required: true, 'data-testid': 'email' })
  const password = field('Password', { type: 'password', name: 'password', autocomplete: 'current-password', required: true, minLength: 8, 'data-testid': 'password' })
  const fullName = field('Full name', { type: 'text', name: 'full_name', autocomplete: 'name', 'data-testid': 'full-name' })
  const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'auth-error' })
  const submit = h('button', { type: 'submit', 'data-testid': 'auth-submit' }, 'Sign in')
  const title = h('h1', {}, 'Sign in to Nox Sync')
  const toggle = h('button', { type: 'button', class: 'link', 'data-testid': 'auth-toggle' })
  const sync = () => {
    const register = mode === 'register'
    title.textContent = register ? 'Create a Nox Sync account' : 'Sign in to Nox Sync'
    submit.textContent = register ? 'Create account' : 'Sign in'
    toggle.textContent = register ? 'I already have an account' : 'Create an account'
    fullName.el.hidden = !register
    fullName.input.required = register
    password.input.autocomplete = register ? 'new-password' : 'current-password'
    error.textContent = ''
  }
  toggle.addEventListener('click', () => { mode = mode === 'login' ? 'register' : 'login'; sync() })
  const form = h('form', {
    class: 'panel auth',
    'aria-labelledby': 'auth-title',
    onsubmit: async (event) => {
      event.preventDefault()
      error.textContent = ''
      submit.disabled = true
      try {
        const body = { email: email.input.value.trim(), password: password.input.value }
        let res
        if (mode === 'register') {
          res = await api('POST', '/auth/register', { ...body, full_name: fullName.input.value.trim() })
        } else {
          res = await api('POST', '/auth/login', body)
          if (res && res.mfa_required) throw new Error('This account uses two-factor sign-in, which this page does not support yet.')
        }
        setTokens(res)
        me = res.user || await loadMe()
        route()
      } catch (err) {
        error.textContent = err.message
      } finally {
        submit.disabled = false
      }
    }
  }, title, email.el, password.el, fullName.el, error, submit, toggle)
  title.id = 'auth-title'
  sync()
  return h('main', { class: 'center' }, form)
}

// ---- workspace picker ----

function slugify (name) {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60)
  return slug || `s-${Math.random().toString(36).slice(2, 8)}`
}

/** One column of the picker: a list of items with a "create" form under it. */
function column ({ title, testid, load, create, createLabel, open, selected }) {
  const list = h('ul', { class: 'items', 'data-testid': `${testid}-list` })
  const error = h('p', { class: 'error', role: 'alert' })
  const name = field(createLabel, { type: 'text', required: true, 'data-testid': `${testid}-name` })
  const form = h('form', {
    class: 'create',
    onsubmit: async (event) => {
      event.preventDefault()
      error.textContent = ''
      try {
        const item = await create(name.input.value.trim())
        name.input.value = ''
        await refresh()
        open(item)
      } catch (err) {
        error.textContent = err.message
      }
    }
  }, name.el, h('button', { type: 'submit', 'data-testid': `${testid}-create` }, 'Create'))
  async function refresh () {
    try {
      const res = await load()
      const items = (res && res.items) || []
      list.replaceChildren(...(items.length
        ? items.map((item) => h('li', {}, h('button', {
          type: 'button',
          class: item.id === selected() ? 'item selected' : 'item',
          'data-testid': `${testid}-${item.id}`,
          onclick: () => open(item)
        }, item.name)))
        : [h('li', { class: 'empty' }, 'None yet')]))
    } catch (err) {
      error.textContent = err.message
    }
  }
  refresh()
  return h('section', { class: 'column', 'aria-label': title }, h('h2', {}, title), list, error, form)
}

function pickerView () {
  const state = { org: null, project: null }
  const columns = h('div', { class: 'columns' })
  const render = () => {
    const cols = [column({
      title: 'Organizations',
      testid: 'org',
      createLabel: 'New organization',
      load: () => api('GET', '/orgs?limit=100'),
      create: (name) => api('POST', '/orgs', { name, slug: slugify(name) }),
      selected: () => state.org && state.org.id,
      open: (org) => { state.org = org; state.project = null; render() }
    })]
    if (state.org) {
      cols.push(column({
        title: `Projects in ${state.org.name}`,
        testid: 'project',
        createLabel: 'New project',
        load: () => api('GET', `/orgs/${state.org.id}/projects?limit=100`),
        create: (name) => api('POST', `/orgs/${state.org.id}/projects`, { name, slug: slugify(name) }),
        selected: () => state.project && state.project.id,
        open: (project) => { state.project = project; render() }
      }))
    }
    if (state.project) {
      cols.push(column({
        title: `Workspaces in ${state.project.name}`,
        testid: 'workspace',
        createLabel: 'New canvas workspace',
        load: () => api('GET', `/projects/${state.project.id}/workspaces?limit=100`),
        create: (name) => api('POST', `/projects/${state.project.id}/workspaces`, { name, type: 'CANVAS' }),
        selected: () => null,
        open: (ws) => navigate(`/w/${ws.id}`)
      }))
    }
    columns.replaceChildren(...cols)
  }
  render()
  return h('main', { class: 'picker' },
    h('header', { class: 'topbar' },
      h('h1', {}, 'Nox Sync'),
      h('span', { class: 'who', 'data-testid': 'me' }, me.full_name || me.email),
      h('button', { type: 'button', onclick: signOut }, 'Sign out')),
    columns)
}

route()

export { toast }
