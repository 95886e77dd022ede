// Helpers for the JavaScript interoperability tests: run a real `nox-sync` process, drive its
// HTTP API, and connect stock yjs + y-websocket clients to it.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..')

/** The server binary: NOX_SYNC_BIN, or the debug build of the shared target directory. */
export const BIN = process.env.NOX_SYNC_BIN || path.join(repoRoot, 'target', 'debug', 'nox-sync')

export const JWT_SECRET = 'js-interop-test-secret-0123456789abcdef'

/** Polls `predicate` (sync or async) until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor (predicate, timeoutMs = 10_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs
  let lastError
  for (;;) {
    try {
      const value = await predicate()
      if (value) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
        (lastError ? ` (last error: ${lastError.message})` : ''))
    }
    await sleep(50)
  }
}

/** A TCP port that was free a moment ago (listen on 0, read the port, close). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

/** A fresh, short data directory under /tmp (the PostgreSQL socket path must stay short). */
export function makeDataDir () {
  const dir = fs.mkdtempSync(path.join('/tmp', 'noxjs-'))
  // When we run as root the embedded cluster runs as `postgres`, which must be able to walk here.
  fs.chmodSync(dir, 0o755)
  return dir
}

function isAlive (pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

/**
 * Stops an embedded PostgreSQL cluster left running in `dataDir` (after a SIGKILLed server, or a
 * server that failed to stop). Fast shutdown (SIGINT to the postmaster), then SIGKILL if it hangs.
 */
export async function stopOrphanPostgres (dataDir) {
  const pidFile = path.join(dataDir, 'postgres', 'data', 'postmaster.pid')
  let pid
  try {
    pid = parseInt(fs.readFileSync(pidFile, 'utf8').split('\n')[0], 10)
  } catch {
    return
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return
  try { process.kill(pid, 'SIGINT') } catch {}
  try {
    await waitFor(() => !isAlive(pid), 15_000, `postmaster ${pid} to stop`)
  } catch {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
}

/** Removes a data directory, stopping any cluster still running in it first. */
export async function removeDataDir (dataDir) {
  if (!dataDir) return
  await stopOrphanPostgres(dataDir)
  fs.rmSync(dataDir, { recursive: true, force: true })
}

/**
 * One `nox-sync serve` process. `start()` waits for `GET /readyz` → 200; `stop(signal)` sends the
 * signal and resolves with `{ code, signal }` once the process has exited.
 */
export class Server {
  constructor ({ dataDir, port, env = {} } = {}) {
    this.dataDir = dataDir
    this.port = port
    this.env = env
    this.proc = null
    this.exit = null // promise of { code, signal }
    this.log = [] // last lines of stdout+stderr, for failure messages
  }

  get base () { return `http://127.0.0.1:${this.port}` }
  get wsBase () { return `ws://127.0.0.1:${this.port}/ws/workspaces` }

  async start ({ readyTimeoutMs = 60_000 } = {}) {
    if (!fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (run cargo build --bin nox-sync or set NOX_SYNC_BIN)`)
    if (this.dataDir == null) this.dataDir = makeDataDir()
    if (this.port == null) this.port = await freePort()
    const env = {
      ...process.env,
      NOX_ADDR: `127.0.0.1:${this.port}`,
      NOX_DATA_DIR: this.dataDir,
      NOX_JWT_SECRET: JWT_SECRET,
      NOX_COMPACT_INTERVAL_MS: '500',
      NOX_LOG: process.env.NOX_LOG || 'info',
      ...this.env
    }
    const proc = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    const keep = (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue
        this.log.push(line)
        if (this.log.length > 200) this.log.shift()
        if (process.env.NOX_JS_VERBOSE) process.stderr.write(`[nox-sync:${this.port}] ${line}\n`)
      }
    }
    proc.stdout.on('data', keep)
    proc.stderr.on('data', keep)
    this.exit = new Promise((resolve) => {
      proc.on('exit', (code, signal) => resolve({ code, signal }))
      proc.on('error', (err) => resolve({ code: null, signal: null, error: err }))
    })
    let exited = null
    this.exit.then((r) => { exited = r })
    try {
      await waitFor(async () => {
        if (exited) throw Object.assign(new Error(`server exited early: ${JSON.stringify(exited)}`), { fatal: true })
        const res = await fetch(`${this.base}/readyz`)
        await res.arrayBuffer()
        return res.status === 200
      }, readyTimeoutMs, 'GET /readyz → 200')
    } catch (err) {
      throw new Error(`${err.message}\n--- server log ---\n${this.logTail()}`)
    }
    return this
  }

  logTail (n = 40) { return this.log.slice(-n).join('\n') }

  get running () { return this.proc != null && this.proc.exitCode == null && this.proc.signalCode == null }

  /** Sends `signal` and waits for the exit; throws if it takes longer than `timeoutMs`. */
  async stop (signal = 'SIGTERM', timeoutMs = 20_000) {
    if (!this.proc) return { code: null, signal: null }
    if (this.running) this.proc.kill(signal)
    const timeout = sleep(timeoutMs).then(() => 'timeout')
    const result = await Promise.race([this.exit, timeout])
    if (result === 'timeout') {
      this.proc.kill('SIGKILL')
      await this.exit
      throw new Error(`server did not exit within ${timeoutMs} ms of ${signal}\n--- server log ---\n${this.logTail()}`)
    }
    return result
  }

  /** Best-effort teardown for `after` hooks: never throws. */
  async kill () {
    try {
      if (this.running) await this.stop('SIGTERM', 20_000)
    } catch {}
    try {
      if (this.running) { this.proc.kill('SIGKILL'); await this.exit }
    } catch {}
  }

  // ---- HTTP API ----

  async api (method, pathname, { token, body } = {}) {
    const headers = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${this.base}/api/v1${pathname}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    const text = await res.text()
    let json = null
    try { json = text ? JSON.parse(text) : null } catch {}
    return { status: res.status, body: json, text }
  }

  async expect (status, method, pathname, opts) {
    const r = await this.api(method, pathname, opts)
    if (r.status !== status) {
      throw new Error(`${method} ${pathname}: expected ${status}, got ${r.status}: ${r.text}`)
    }
    return r.body
  }

  /** Registers a user with a unique email; returns `{ email, password, token, userId }`. */
  async register (name = 'user') {
    const email = `${name}-${crypto.randomUUID().slice(0, 12)}@example.com`
    const password = 'correct horse battery'
    const body = await this.expect(201, 'POST', '/auth/register', { body: { email, password, full_name: name } })
    return { email, password, token: body.access_token, userId: body.user.id }
  }

  /** A new access token for an existing user. */
  async login ({ email, password }) {
    const r = await this.api('POST', '/auth/login', { body: { email, password } })
    if (r.status !== 200 && r.status !== 201) throw new Error(`login: ${r.status} ${r.text}`)
    return r.body.access_token
  }

  /** A user owning an org, a project and a canvas workspace. */
  async ownerWithWorkspace (name = 'owner') {
    const user = await this.register(name)
    const slug = `${name}-${crypto.randomUUID().slice(0, 8)}`
    const org = await this.expect(201, 'POST', '/orgs', { token: user.token, body: { name: slug, slug } })
    const project = await this.expect(201, 'POST', `/orgs/${org.id}/projects`, { token: user.token, body: { name: 'main', slug: 'main' } })
    const ws = await this.expect(201, 'POST', `/projects/${project.id}/workspaces`, { token: user.token, body: { name: 'canvas', type: 'CANVAS' } })
    return { user, orgId: org.id, projectId: project.id, workspaceId: ws.id }
  }
}

/**
 * A PostgreSQL shared by several nodes: `nox-sync database` on a fresh data dir (it prints
 * `DATABASE_URL=...` once ready). Returns `{ url, dataDir, stop() }`.
 */
export async function startDatabase () {
  const dataDir = makeDataDir()
  const proc = spawn(BIN, ['database'], {
    env: { ...process.env, NOX_DATA_DIR: dataDir, NOX_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })))
  let out = ''
  let err = ''
  proc.stderr.on('data', (chunk) => { err += chunk.toString() })
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nox-sync database not ready in 60 s\n${err}`)), 60_000)
    proc.stdout.on('data', (chunk) => {
      out += chunk.toString()
      const match = out.match(/^DATABASE_URL=(.+)$/m)
      if (match) { clearTimeout(timer); resolve(match[1].trim()) }
    })
    exited.then((r) => { clearTimeout(timer); reject(new Error(`nox-sync database exited: ${JSON.stringify(r)}\n${err}`)) })
  })
  return {
    url,
    dataDir,
    async stop () {
      if (proc.exitCode == null && proc.signalCode == null) proc.kill('SIGTERM')
      await Promise.race([exited, sleep(20_000)])
      await removeDataDir(dataDir)
    }
  }
}

/** The `psql` next to the PostgreSQL server binaries (or on PATH). */
function psqlBinary () {
  for (const dir of (process.env.PATH || '').split(':')) {
    const candidate = path.join(dir, 'psql')
    if (fs.existsSync(candidate)) return candidate
  }
  const base = '/usr/lib/postgresql'
  const versions = fs.existsSync(base) ? fs.readdirSync(base).sort().reverse() : []
  for (const v of versions) {
    const candidate = path.join(base, v, 'bin', 'psql')
    if (fs.existsSync(candidate)) return candidate
  }
  throw new Error('psql not found (install the postgresql client)')
}

/** Runs one SQL query with psql; returns its rows as arrays of strings. */
export async function sql (url, query) {
  const proc = spawn(psqlBinary(), [url, '-AtX', '-F', '\t', '-c', query], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (c) => { out += c.toString() })
  proc.stderr.on('data', (c) => { err += c.toString() })
  const code = await new Promise((resolve) => proc.on('exit', resolve))
  if (code !== 0) throw new Error(`psql failed (${code}): ${err}`)
  return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'))
}

/** Starts a server on a fresh data dir and port. */
export async function startServer (opts = {}) {
  const server = new Server(opts)
  await server.start()
  return server
}

// ---- Yjs clients ----

/**
 * A Y.Doc with a stock y-websocket provider on `workspaceId`. BroadcastChannel is disabled so
 * that providers in this one process can only reach each other through the server.
 */
export function connectClient (server, workspaceId, token, { connect = true, name } = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.wsBase, workspaceId, doc, {
    WebSocketPolyfill: WebSocket,
    params: { token },
    disableBc: true,
    connect
  })
  const closes = []
  provider.on('connection-close', (event) => { closes.push(event ? event.code : null) })
  return { doc, provider, closes, name }
}

/** Resolves once the provider has received the server's SyncStep2. */
export function synced (provider, timeoutMs = 15_000) {
  if (provider.synced) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      provider.off('sync', onSync)
      reject(new Error(`provider not synced within ${timeoutMs} ms`))
    }, timeoutMs)
    const onSync = (isSynced) => {
      if (!isSynced) return
      clearTimeout(timer)
      provider.off('sync', onSync)
      resolve()
    }
    provider.on('sync', onSync)
  })
}

/** Destroys clients without throwing (for `after` hooks). */
export function destroyClients (clients) {
  for (const c of clients) {
    try { c.provider.destroy() } catch {}
    try { c.doc.destroy() } catch {}
  }
  clients.length = 0
}

/** The canvas content of a doc as plain JSON. */
export function snapshot (doc) {
  return {
    blocks: doc.getMap('blocks').toJSON(),
    relations: doc.getMap('relations').toJSON()
  }
}

/** Waits until every doc has the same canvas JSON (and, if given, until `check(json)` holds). */
export async function waitConverged (docs, timeoutMs = 15_000, check = () => true) {
  await waitFor(() => {
    const first = JSON.stringify(sortKeys(snapshot(docs[0])))
    if (!check(snapshot(docs[0]))) return false
    return docs.every((d) => JSON.stringify(sortKeys(snapshot(d))) === first)
  }, timeoutMs, `${docs.length} docs to converge`)
  return snapshot(docs[0])
}

function sortKeys (v) {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  }
  return v
}

/** Adds a block (nested `config` / `visual` maps) in one transaction; returns its id. */
export function addBlock (doc, { name, type = 'SERVICE', parent = null, config = {}, visual = {} } = {}) {
  const id = crypto.randomUUID()
  doc.transact(() => {
    const block = new Y.Map()
    doc.getMap('blocks').set(id, block)
    block.set('type', type)
    block.set('name', name ?? `block-${id.slice(0, 8)}`)
    block.set('parent_block_id', parent)
    const cfg = new Y.Map()
    block.set('config', cfg)
    for (const [k, v] of Object.entries(config)) cfg.set(k, v)
    const vis = new Y.Map()
    block.set('visual', vis)
    for (const [k, v] of Object.entries(visual)) vis.set(k, v)
  })
  return id
}

/** Adds a relation between two blocks; returns its id. */
export function addRelation (doc, source, target, type = 'DEPENDS_ON') {
  const id = crypto.randomUUID()
  doc.transact(() => {
    const rel = new Y.Map()
    doc.getMap('relations').set(id, rel)
    rel.set('source_block_id', source)
    rel.set('target_block_id', target)
    rel.set('type', type)
  })
  return id
}

export { Y, WebSocket, os }
