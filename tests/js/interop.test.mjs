// Interoperability: stock yjs + y-websocket clients against a real nox-sync process.
//   cd tests/js && npm ci && npm test      (NOX_SYNC_BIN overrides target/debug/nox-sync)

import { describe, it, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

import {
  Server, startServer, removeDataDir, connectClient, synced, destroyClients, snapshot,
  waitConverged, waitFor, addBlock, addRelation, Y, WebSocket
} from './helpers.mjs'

/** Clients opened by the running test; destroyed after each test even when it failed. */
const clients = []
function client (server, workspaceId, token, opts) {
  const c = connectClient(server, workspaceId, token, opts)
  clients.push(c)
  return c
}
afterEach(() => destroyClients(clients))

describe('one server', () => {
  let server

  before(async () => { server = await startServer() })
  after(async () => {
    destroyClients(clients)
    if (server) {
      await server.kill()
      await removeDataDir(server.dataDir)
    }
  })

  it('three providers co-edit blocks and relations and converge', async () => {
    const { user, workspaceId } = await server.ownerWithWorkspace('coedit')
    const tokens = [user.token, await server.login(user), await server.login(user)]
    const [a, b, c] = tokens.map((t, i) => client(server, workspaceId, t, { name: 'ABC'[i] }))
    await Promise.all([a, b, c].map((x) => synced(x.provider)))

    // Everyone edits at once: two blocks each, with nested config/visual maps.
    const ids = {}
    for (const x of [a, b, c]) {
      const parent = addBlock(x.doc, { name: `${x.name}-group`, type: 'GROUP', config: { owner: x.name }, visual: { x: 0, y: 0, color: '#fff' } })
      const child = addBlock(x.doc, { name: `${x.name}-svc`, parent, config: { replicas: 1, tags: ['a', 'b'] }, visual: { x: 10, y: 20 } })
      ids[x.name] = { parent, child }
    }
    // Relations, some between blocks of different clients.
    const relations = [
      addRelation(a.doc, ids.A.child, ids.A.parent, 'CONTAINS'),
      addRelation(a.doc, ids.A.child, ids.B.child),
      addRelation(b.doc, ids.B.child, ids.C.child),
      addRelation(c.doc, ids.C.child, ids.A.child, 'CALLS')
    ]

    // C renames A's block once it has it; B changes a nested key of C's block.
    await waitFor(() => c.doc.getMap('blocks').has(ids.A.child), 15_000, 'C to see A\'s block')
    c.doc.getMap('blocks').get(ids.A.child).set('name', 'renamed-by-C')
    await waitFor(() => b.doc.getMap('blocks').has(ids.C.child), 15_000, 'B to see C\'s block')
    b.doc.getMap('blocks').get(ids.C.child).get('config').set('replicas', 5)

    const json = await waitConverged([a.doc, b.doc, c.doc], 20_000, (s) =>
      Object.keys(s.blocks).length === 6 && Object.keys(s.relations).length === 4 &&
      s.blocks[ids.A.child]?.name === 'renamed-by-C' && s.blocks[ids.C.child]?.config?.replicas === 5)
    for (const x of [a, b, c]) assert.deepStrictEqual(snapshot(x.doc), json)

    assert.deepStrictEqual(json.blocks[ids.B.child], {
      type: 'SERVICE', name: 'B-svc', parent_block_id: ids.B.parent,
      config: { replicas: 1, tags: ['a', 'b'] }, visual: { x: 10, y: 20 }
    })
    assert.deepStrictEqual(json.blocks[ids.A.parent].visual, { x: 0, y: 0, color: '#fff' })
    assert.deepStrictEqual(json.relations[relations[3]], { source_block_id: ids.C.child, target_block_id: ids.A.child, type: 'CALLS' })

    // The server holds the merged document: a late joiner gets all of it from the server alone.
    const d = client(server, workspaceId, tokens[0], { name: 'D' })
    await synced(d.provider)
    assert.deepStrictEqual(snapshot(d.doc), json)
  })

  it('offline edits merge on reconnect', async () => {
    const { user, workspaceId } = await server.ownerWithWorkspace('offline')
    const a = client(server, workspaceId, user.token, { name: 'A' })
    const b = client(server, workspaceId, await server.login(user), { name: 'B' })
    await Promise.all([synced(a.provider), synced(b.provider)])

    const x = addBlock(a.doc, { name: 'x', config: { replicas: 1, region: 'eu' }, visual: { x: 1 } })
    const y = addBlock(a.doc, { name: 'y' })
    const r1 = addRelation(a.doc, x, y)
    const r2 = addRelation(a.doc, y, x)
    await waitConverged([a.doc, b.doc], 15_000, (s) => Object.keys(s.relations).length === 2)

    b.provider.disconnect()
    await waitFor(() => !b.provider.wsconnected && !b.provider.wsconnecting, 10_000, 'B to disconnect')

    // B, offline: adds a block, deletes a relation, changes a nested config key.
    const bBlock = addBlock(b.doc, { name: 'made-offline', parent: x, config: { offline: true } })
    b.doc.getMap('relations').delete(r1)
    b.doc.getMap('blocks').get(x).get('config').set('replicas', 3)
    // A, online at the same time: adds a block and a relation, edits another nested key.
    const aBlock = addBlock(a.doc, { name: 'made-online' })
    const r3 = addRelation(a.doc, aBlock, x)
    a.doc.getMap('blocks').get(x).get('visual').set('x', 42)

    await sleep(500)
    assert.equal(b.doc.getMap('blocks').has(aBlock), false, 'B is offline and must not see A\'s new block')
    assert.equal(a.doc.getMap('blocks').has(bBlock), false, 'A must not see B\'s offline block yet')

    b.provider.connect()
    const json = await waitConverged([a.doc, b.doc], 20_000, (s) =>
      s.blocks[aBlock] && s.blocks[bBlock] && !s.relations[r1] && s.relations[r3])
    assert.deepStrictEqual(snapshot(a.doc), snapshot(b.doc))
    assert.deepStrictEqual(Object.keys(json.blocks).sort(), [x, y, aBlock, bBlock].sort())
    assert.deepStrictEqual(Object.keys(json.relations).sort(), [r2, r3].sort())
    assert.deepStrictEqual(json.blocks[x].config, { replicas: 3, region: 'eu' })
    assert.deepStrictEqual(json.blocks[x].visual, { x: 42 })
    assert.deepStrictEqual(json.blocks[bBlock].config, { offline: true })
    assert.equal(json.blocks[bBlock].parent_block_id, x)

    const c = client(server, workspaceId, user.token, { name: 'C' })
    await synced(c.provider)
    assert.deepStrictEqual(snapshot(c.doc), json)
  })

  it('awareness is shared and removed when a client leaves', async () => {
    const { user, workspaceId } = await server.ownerWithWorkspace('awareness')
    const a = client(server, workspaceId, user.token, { name: 'A' })
    const b = client(server, workspaceId, await server.login(user), { name: 'B' })
    await Promise.all([synced(a.provider), synced(b.provider)])

    const aId = a.doc.clientID
    // The server stamps `user.id` and `user.name` with the authenticated user (full_name), so a
    // client cannot pose as someone else; other fields pass through unchanged.
    a.provider.awareness.setLocalState({ user: { name: 'A', id: 'forged', color: '#f00' } })
    const seen = await waitFor(() => b.provider.awareness.getStates().get(aId), 10_000, 'B to see A\'s awareness')
    assert.deepStrictEqual(seen, { user: { name: 'awareness', id: user.userId, color: '#f00' } })

    a.provider.awareness.setLocalStateField('cursor', { x: 3, y: 4 })
    await waitFor(() => b.provider.awareness.getStates().get(aId)?.cursor?.x === 3, 10_000, 'B to see A\'s cursor')

    a.provider.destroy()
    await waitFor(() => !b.provider.awareness.getStates().has(aId), 5_000, 'A to leave B\'s awareness')

    // A client whose socket dies without saying goodbye (no "null" awareness update): the server
    // must remove its state on close.
    const c = client(server, workspaceId, user.token, { name: 'C' })
    await synced(c.provider)
    const cId = c.doc.clientID
    c.provider.awareness.setLocalState({ user: { color: '#0f0' } })
    await waitFor(() => b.provider.awareness.getStates().get(cId)?.user?.color === '#0f0', 10_000, 'B to see C')
    c.provider.shouldConnect = false
    c.provider.ws.terminate()
    await waitFor(() => !b.provider.awareness.getStates().has(cId), 5_000, 'C (dropped) to leave B\'s awareness')
    assert.ok(b.provider.awareness.getStates().has(b.doc.clientID), 'B keeps its own state')
  })

  it('refuses bad tokens (401) and unknown workspaces (404) before the upgrade', async () => {
    const { user, workspaceId } = await server.ownerWithWorkspace('refuse')
    const upgrade = (url) => new Promise((resolve) => {
      const ws = new WebSocket(url)
      ws.on('unexpected-response', (req, res) => { resolve({ status: res.statusCode }); req.destroy() })
      ws.on('open', () => { resolve({ status: 101 }); ws.close() })
      ws.on('error', (err) => resolve({ error: err.message }))
    })
    const base = `${server.wsBase}/${workspaceId}`
    assert.deepStrictEqual(await upgrade(`${base}?token=not-a-jwt`), { status: 401 })
    assert.deepStrictEqual(await upgrade(base), { status: 401 })
    // A well-formed token signed with another secret.
    const forged = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.' +
      Buffer.from(JSON.stringify({ sub: user.userId, exp: Math.floor(Date.now() / 1000) + 600 })).toString('base64url') +
      '.c2lnbmF0dXJlLWJ5LWFub3RoZXItc2VjcmV0LXh4eHh4eHh4eHh4eA'
    assert.deepStrictEqual(await upgrade(`${base}?token=${forged}`), { status: 401 })
    assert.deepStrictEqual(await upgrade(`${server.wsBase}/${crypto.randomUUID()}?token=${user.token}`), { status: 404 })
    // Sanity: the right token and workspace upgrade.
    assert.deepStrictEqual(await upgrade(`${base}?token=${user.token}`), { status: 101 })

    // A stock provider with a bad token never syncs, and nothing it does reaches the document.
    const bad = client(server, workspaceId, 'not-a-jwt', { name: 'bad' })
    addBlock(bad.doc, { name: 'should-never-arrive' })
    await sleep(2_000)
    assert.equal(bad.provider.synced, false)
    const good = client(server, workspaceId, user.token, { name: 'good' })
    await synced(good.provider)
    assert.deepStrictEqual(snapshot(good.doc), { blocks: {}, relations: {} })
  })
})

describe('restart durability (SIGTERM)', () => {
  let server

  before(async () => { server = await startServer() })
  after(async () => {
    destroyClients(clients)
    if (server) {
      await server.kill()
      await removeDataDir(server.dataDir)
    }
  })

  it('a graceful restart keeps every edit', async () => {
    const { user, workspaceId } = await server.ownerWithWorkspace('restart')
    const a = client(server, workspaceId, user.token, { name: 'A' })
    const b = client(server, workspaceId, await server.login(user), { name: 'B' })
    await Promise.all([synced(a.provider), synced(b.provider)])

    const ids = []
    for (let i = 0; i < 5; i++) ids.push(addBlock(i % 2 ? a.doc : b.doc, { name: `b${i}`, config: { i }, visual: { x: i * 10 } }))
    addRelation(a.doc, ids[0], ids[1])
    await sleep(1_200) // let a compaction (every 500 ms) run, then edit some more
    for (let i = 0; i < 4; i++) addRelation(b.doc, ids[i], ids[i + 1], 'NEXT')
    a.doc.getMap('blocks').get(ids[2]).set('name', 'renamed')
    b.doc.getMap('blocks').delete(ids[4])
    const before = await waitConverged([a.doc, b.doc], 15_000, (s) =>
      Object.keys(s.relations).length === 5 && Object.keys(s.blocks).length === 4 && s.blocks[ids[2]].name === 'renamed')

    const exit = await server.stop('SIGTERM', 20_000)
    assert.deepStrictEqual(exit, { code: 0, signal: null }, `server exit after SIGTERM\n${server.logTail()}`)
    // Graceful shutdown closes the sockets with 1012 (service restart).
    await waitFor(() => a.closes.length > 0 && b.closes.length > 0, 5_000, 'providers to see the close')
    assert.equal(a.closes[0], 1012, `close codes seen by A: ${a.closes}`)
    assert.equal(b.closes[0], 1012, `close codes seen by B: ${b.closes}`)
    // The old clients must not re-upload their copy to the restarted server.
    destroyClients(clients)

    await server.start()
    const fresh = client(server, workspaceId, user.token, { name: 'fresh' })
    await synced(fresh.provider)
    assert.deepStrictEqual(snapshot(fresh.doc), before)
  })
})

describe('crash durability (SIGKILL)', () => {
  let server

  before(async () => { server = await startServer() })
  after(async () => {
    destroyClients(clients)
    if (server) {
      await server.kill()
      await removeDataDir(server.dataDir)
    }
  })

  async function crashAndCheck (pauseMs) {
    const { user, workspaceId } = await server.ownerWithWorkspace(`crash${pauseMs}`)
    const a = client(server, workspaceId, user.token, { name: 'A' })
    const b = client(server, workspaceId, await server.login(user), { name: 'B' })
    await Promise.all([synced(a.provider), synced(b.provider)])

    // A first batch that gets compacted, then a second batch that is only in the update log.
    const ids = []
    for (let i = 0; i < 4; i++) ids.push(addBlock(a.doc, { name: `first-${i}`, config: { i } }))
    await waitConverged([a.doc, b.doc], 15_000, (s) => Object.keys(s.blocks).length === 4)
    await sleep(1_200)
    for (let i = 0; i < 6; i++) ids.push(addBlock(a.doc, { name: `second-${i}`, config: { i }, visual: { x: i } }))
    for (let i = 0; i < 5; i++) addRelation(a.doc, ids[i], ids[i + 1])
    a.doc.getMap('blocks').get(ids[0]).get('config').set('i', 'changed')
    a.doc.getMap('blocks').delete(ids[1])

    // B has received everything: from here on it must be durable.
    await waitFor(() => {
      const s = snapshot(b.doc)
      return Object.keys(s.blocks).length === 9 && Object.keys(s.relations).length === 5 &&
        s.blocks[ids[0]].config.i === 'changed'
    }, 15_000, 'B to receive every edit')
    const received = snapshot(b.doc)
    if (pauseMs) await sleep(pauseMs)

    const exit = await server.stop('SIGKILL', 10_000)
    assert.equal(exit.signal, 'SIGKILL')
    destroyClients(clients) // before the restart: they must not re-upload what they hold

    await server.start()
    const fresh = client(server, workspaceId, user.token, { name: 'fresh' })
    await synced(fresh.provider)
    assert.deepStrictEqual(snapshot(fresh.doc), received)
  }

  it('edits another client received ~300 ms before SIGKILL survive', async () => {
    await crashAndCheck(300)
  })

  it('edits another client received survive an immediate SIGKILL', async () => {
    await crashAndCheck(0)
  })
})
