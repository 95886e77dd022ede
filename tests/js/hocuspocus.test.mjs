// The stock @hocuspocus/provider against nox-sync's /hocuspocus endpoint: in-band auth (JWT and API
// key), read-write and readonly scopes, many documents on one socket, SyncStatus after the durable
// commit, stateless lock and comment messages, and y-websocket peers on the same workspace.
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import {
  Y, WebSocket, startServer, waitFor, connectClient, synced, destroyClients, snapshot, addBlock
} from './helpers.mjs'

describe('@hocuspocus/provider', () => {
  let server, owner, orgId, projectId, ws1
  const clients = []
  const sockets = []
  const providers = []

  before(async () => {
    server = await startServer()
    const setup = await server.ownerWithWorkspace('hocus')
    owner = setup.user
    orgId = setup.orgId
    projectId = setup.projectId
    ws1 = setup.workspaceId
  })

  after(async () => {
    for (const p of providers) { try { p.destroy() } catch {} }
    for (const s of sockets) { try { s.destroy() } catch {} }
    destroyClients(clients)
    await server?.kill()
  })

  function socket () {
    const s = new HocuspocusProviderWebsocket({
      url: `ws://127.0.0.1:${server.port}/hocuspocus`,
      WebSocketPolyfill: WebSocket
    })
    sockets.push(s)
    return s
  }

  /** A provider whose events are recorded on it: scope, failures, stateless payloads. */
  function open (websocketProvider, name, token) {
    const seen = { scope: null, failures: [], stateless: [], synced: false }
    const provider = new HocuspocusProvider({
      websocketProvider,
      name,
      token,
      document: new Y.Doc(),
      onAuthenticated: ({ scope }) => { seen.scope = scope },
      onAuthenticationFailed: ({ reason }) => { seen.failures.push(reason) },
      onStateless: ({ payload }) => { seen.stateless.push(JSON.parse(payload)) },
      onSynced: () => { seen.synced = true }
    })
    // v4 attaches providers that share a websocket explicitly.
    if (typeof provider.attach === 'function' && !provider.isAttached) provider.attach()
    providers.push(provider)
    return { provider, doc: provider.document, seen }
  }

  test('authenticates, multiplexes documents and syncs with y-websocket peers', async () => {
    const second = await server.expect(201, 'POST', `/projects/${projectId}/workspaces`, {
      token: owner.token, body: { name: 'second', type: 'CANVAS' }
    })
    const s = socket()
    const a = open(s, ws1, owner.token)
    const b = open(s, second.id, owner.token)
    await waitFor(() => a.seen.synced && b.seen.synced, 15_000, 'both documents synced')
    assert.equal(a.seen.scope, 'read-write')
    assert.equal(b.seen.scope, 'read-write')

    const peer = connectClient(server, ws1, owner.token)
    clients.push(peer)
    await synced(peer.provider)
    const fromHp = addBlock(a.doc, { name: 'from hocuspocus' })
    await waitFor(() => peer.doc.getMap('blocks').has(fromHp), 10_000, 'y-websocket peer sees the block')
    const fromYws = addBlock(peer.doc, { name: 'from y-websocket' })
    await waitFor(() => a.doc.getMap('blocks').has(fromYws), 10_000, 'hocuspocus sees the block')
    assert.deepEqual(snapshot(a.doc), snapshot(peer.doc))
    assert.equal(b.doc.getMap('blocks').size, 0, 'the other document on the socket is untouched')
  })

  test('unsynced changes drop to zero only through SyncStatus after the commit', async () => {
    const a = open(socket(), ws1, owner.token)
    await waitFor(() => a.seen.synced, 15_000, 'synced')
    addBlock(a.doc, { name: 'counted' })
    assert.ok(a.provider.unsyncedChanges > 0, 'the edit counts as unsynced until the server confirms it')
    await waitFor(() => a.provider.unsyncedChanges === 0, 10_000, 'SyncStatus received')
  })

  test('a read-only API key gets the readonly scope and cannot write; a bad token is refused', async () => {
    const key = await server.expect(201, 'POST', `/orgs/${orgId}/api-keys`, {
      token: owner.token, body: { name: 'reader', scopes: ['workspace:read'] }
    })
    const ro = open(socket(), ws1, key.key)
    await waitFor(() => ro.seen.synced, 15_000, 'read-only provider synced')
    assert.equal(ro.seen.scope, 'readonly')

    const bad = open(socket(), ws1, 'not-a-token')
    await waitFor(() => bad.seen.failures.length > 0, 10_000, 'authentication failed')
    assert.equal(bad.seen.synced, false)

    const watcher = connectClient(server, ws1, owner.token)
    clients.push(watcher)
    await synced(watcher.provider)
    const before = watcher.doc.getMap('blocks').size
    addBlock(ro.doc, { name: 'read-only edit' })
    addBlock(bad.doc, { name: 'refused edit' })
    await new Promise((resolve) => setTimeout(resolve, 800))
    assert.equal(watcher.doc.getMap('blocks').size, before, 'neither edit reached the workspace')
  })

  test('lock messages travel as stateless messages', async () => {
    const a = open(socket(), ws1, owner.token)
    await waitFor(() => a.seen.synced, 15_000, 'synced')
    const block = addBlock(a.doc, { name: 'to lock' })
    await waitFor(() => a.provider.unsyncedChanges === 0, 10_000, 'block stored')
    a.provider.sendStateless(JSON.stringify({
      type: 'lock.acquire', resource_type: 'BLOCK', resource_id: block, request_id: 'r1'
    }))
    await waitFor(() => a.seen.stateless.some((m) => m.type === 'lock.granted'), 10_000, 'lock granted')
    const granted = a.seen.stateless.find((m) => m.type === 'lock.granted')
    assert.equal(granted.request_id, 'r1')
    assert.equal(granted.lock.user_id, owner.userId)
    assert.ok(a.seen.stateless.some((m) => m.type === 'lock.list'), 'the lock list arrives on join')
  })

  test('a comment posted over HTTP arrives live as a stateless message', async () => {
    const a = open(socket(), ws1, owner.token)
    await waitFor(() => a.seen.synced, 15_000, 'synced')
    const comment = await server.expect(201, 'POST', `/workspaces/${ws1}/comments`, {
      token: owner.token, body: { content: 'seen live by a stock provider' }
    })
    await waitFor(() => a.seen.stateless.some((m) => m.type === 'comment.created'), 10_000, 'comment event')
    const event = a.seen.stateless.find((m) => m.type === 'comment.created')
    assert.equal(event.comment.id, comment.id)
    assert.equal(event.comment.content, 'seen live by a stock provider')
    assert.equal(event.workspace_id, ws1)
  })
})
