// Version restore seen live by stock yjs + y-websocket clients, and kept across a restart.
//   cd tests/js && npm ci && npm test      (NOX_SYNC_BIN overrides target/debug/nox-sync)

import { describe, it, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'

import {
  startServer, removeDataDir, connectClient, synced, destroyClients, snapshot,
  waitConverged, waitFor, addBlock, addRelation
} from './helpers.mjs'

const clients = []
function client (server, workspaceId, token, opts) {
  const c = connectClient(server, workspaceId, token, opts)
  clients.push(c)
  return c
}
afterEach(() => destroyClients(clients))

describe('versions', () => {
  let server

  before(async () => { server = await startServer() })
  after(async () => {
    destroyClients(clients)
    if (server) {
      await server.kill()
      await removeDataDir(server.dataDir)
    }
  })

  it('a restore reaches open y-websocket editors live and survives a restart', async () => {
    const { user, workspaceId } = await server.ownerWithWorkspace('versions')
    const editor = client(server, workspaceId, user.token, { name: 'editor' })
    const watcher = client(server, workspaceId, await server.login(user), { name: 'watcher' })
    await Promise.all([synced(editor.provider), synced(watcher.provider)])

    const a = addBlock(editor.doc, { name: 'A', config: { replicas: 1 }, visual: { x: 1, y: 2 } })
    const b = addBlock(editor.doc, { name: 'B' })
    addRelation(editor.doc, a, b)
    const good = await waitConverged([editor.doc, watcher.doc], 15_000, (s) =>
      Object.keys(s.blocks).length === 2 && Object.keys(s.relations).length === 1)
    // The version is taken from the server's copy: wait until the server has both blocks.
    const base = `/workspaces/${workspaceId}`
    await waitFor(async () => {
      const listed = await server.expect(200, 'GET', `${base}/blocks`, { token: user.token })
      return listed.items.length === 2
    }, 10_000, 'the server to hold both blocks')
    const version = await server.expect(201, 'POST', `${base}/versions`, {
      token: user.token, body: { name: 'before the bad import', description: 'known good' }
    })
    assert.equal(version.block_count, 2)
    assert.equal(version.relation_count, 1)

    // The bad import: a rename, a nested change, a removal, an addition.
    editor.doc.getMap('blocks').get(a).set('name', 'broken')
    editor.doc.getMap('blocks').get(a).get('config').set('replicas', 9)
    editor.doc.getMap('blocks').delete(b)
    addBlock(editor.doc, { name: 'junk' })
    await waitConverged([editor.doc, watcher.doc], 15_000, (s) =>
      Object.keys(s.blocks).length === 2 && s.blocks[a].name === 'broken')
    await waitFor(async () => {
      const diff = await server.expect(200, 'GET', `${base}/versions/${version.id}/diff?against=current`, { token: user.token })
      return diff.blocks.added.length === 1 && diff.blocks.removed.length === 1 && diff.blocks.changed.length === 1
    }, 10_000, 'the server to hold the bad import')

    const restored = await server.expect(200, 'POST', `${base}/versions/${version.id}/restore`, { token: user.token })
    assert.equal(restored.before_restore.kind, 'before_restore')

    // Both stock clients jump back to the version, without reconnecting.
    const back = await waitConverged([editor.doc, watcher.doc], 15_000, (s) =>
      Object.keys(s.blocks).length === 2 && s.blocks[a]?.name === 'A' && s.blocks[b]?.name === 'B' &&
      s.blocks[a].config.replicas === 1)
    assert.deepStrictEqual(back, good)
    assert.equal(watcher.closes.length, 0, `the watcher stayed connected: ${watcher.closes}`)

    const exit = await server.stop('SIGTERM', 20_000)
    assert.deepStrictEqual(exit, { code: 0, signal: null }, `server exit after SIGTERM\n${server.logTail()}`)
    destroyClients(clients)
    await server.start()
    const fresh = client(server, workspaceId, user.token, { name: 'fresh' })
    await synced(fresh.provider)
    assert.deepStrictEqual(snapshot(fresh.doc), good)
  })
})
