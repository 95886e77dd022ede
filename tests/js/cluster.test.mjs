// Three nox-sync nodes on one PostgreSQL (docs/design.md §7), with stock yjs + y-websocket clients
// spread over them: one room per workspace on the node holding its lease, the others relay. The
// owner is SIGKILLed mid-edit; another node takes the lease over after the TTL, the clients
// reconnect (those of the dead node through "the load balancer", i.e. to another node) and
// converge: nothing a client made is lost, nothing deleted comes back, and the relational rows
// match the document.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'

import {
  Server, startDatabase, sql, connectClient, synced, destroyClients, snapshot,
  waitConverged, waitFor, addBlock, removeDataDir, WebSocket
} from './helpers.mjs'
import { WebsocketProvider } from 'y-websocket'

const TTL_MS = 1500

describe('three nodes on one database', () => {
  let database
  const nodes = []
  const clients = []

  before(async () => {
    database = await startDatabase()
    for (let i = 0; i < 3; i++) {
      const node = new Server({
        env: { DATABASE_URL: database.url, NOX_NODE_TTL_MS: String(TTL_MS) }
      })
      await node.start()
      nodes.push(node)
    }
  })

  after(async () => {
    destroyClients(clients)
    for (const node of nodes) {
      await node.kill()
      await removeDataDir(node.dataDir)
    }
    if (database) await database.stop()
  })

  /** Moves a client to another node, keeping its document (what a load balancer does). */
  function moveTo (client, node, token, workspaceId) {
    client.provider.destroy()
    client.provider = new WebsocketProvider(node.wsBase, workspaceId, client.doc, {
      WebSocketPolyfill: WebSocket,
      params: { token },
      disableBc: true
    })
  }

  async function leaseHolder (workspaceId) {
    const rows = await sql(database.url,
      `SELECT n.addr FROM workspace_leases l JOIN nodes n ON n.id = l.node_id WHERE l.workspace_id = '${workspaceId}'`)
    return rows.length ? rows[0][0] : null
  }

  it('clients on every node converge through a SIGKILL of the owner, losing nothing', async (t) => {
    const { user, workspaceId } = await nodes[1].ownerWithWorkspace('cluster')
    // The first client lands on node 0, which loads the room and takes the lease.
    for (let i = 0; i < 6; i++) {
      const node = nodes[i % 3]
      const token = await node.login(user)
      clients.push({ ...connectClient(node, workspaceId, token, { name: `c${i}` }), node: i % 3, token })
      if (i === 0) await synced(clients[0].provider)
    }
    await Promise.all(clients.map((c) => synced(c.provider)))
    assert.equal(await leaseHolder(workspaceId), `127.0.0.1:${nodes[0].port}`)

    // Everyone edits; some blocks are deleted again before the crash.
    const made = []
    const deleted = []
    for (const c of clients) {
      for (let i = 0; i < 3; i++) made.push(addBlock(c.doc, { name: `${c.name}-${i}`, config: { i } }))
    }
    await waitConverged(clients.map((c) => c.doc), 20_000, (s) => Object.keys(s.blocks).length === made.length)
    for (const id of made.splice(0, 4)) {
      clients[3].doc.getMap('blocks').delete(id)
      deleted.push(id)
    }
    await waitConverged(clients.map((c) => c.doc), 20_000, (s) => deleted.every((id) => !(id in s.blocks)))

    // Edits keep flowing from every client while the owner is killed.
    let editing = true
    const writers = clients.map(async (c) => {
      let n = 0
      while (editing) {
        made.push(addBlock(c.doc, { name: `${c.name}-live-${n++}` }))
        await sleep(40)
      }
    })
    await sleep(300)
    const exit = await nodes[0].stop('SIGKILL', 10_000)
    assert.equal(exit.signal, 'SIGKILL')
    const killedAt = Date.now()
    // The dead node's clients come back through another node; the others reconnect by themselves.
    for (const c of clients.filter((c) => c.node === 0)) moveTo(c, nodes[1], c.token, workspaceId)
    // Failover as users see it: an edit made on node 1 right after the crash reaches node 2.
    const probe = addBlock(clients[1].doc, { name: 'probe after the crash' })
    made.push(probe)
    await waitFor(() => probe in snapshot(clients[2].doc).blocks, 30_000, 'an edit across nodes after the crash')
    t.diagnostic(`failover: an edit made on a surviving node after SIGKILL reached the other after ${Date.now() - killedAt} ms (TTL ${TTL_MS} ms)`)
    await sleep(500)
    editing = false
    await Promise.all(writers)

    const survivors = clients.map((c) => c.doc)
    const final = await waitConverged(survivors, 30_000, (s) =>
      made.every((id) => id in s.blocks) && deleted.every((id) => !(id in s.blocks)))
    assert.equal(Object.keys(final.blocks).length, made.length)
    const owner = await leaseHolder(workspaceId)
    assert.ok([nodes[1].port, nodes[2].port].some((p) => owner === `127.0.0.1:${p}`), `new owner: ${owner}`)

    // A fresh client on the third node sees exactly the converged canvas.
    const fresh = connectClient(nodes[2], workspaceId, await nodes[2].login(user), { name: 'fresh' })
    clients.push(fresh)
    await synced(fresh.provider)
    await waitConverged([fresh.doc, survivors[1]], 15_000)
    assert.deepStrictEqual(snapshot(fresh.doc).blocks, final.blocks)

    // The rows catch up with the document (compaction on the new owner).
    await waitFor(async () => {
      const rows = await sql(database.url,
        `SELECT id FROM core_blocks WHERE workspace_id = '${workspaceId}' AND deleted_at IS NULL`)
      const ids = new Set(rows.map((r) => r[0]))
      return ids.size === made.length && made.every((id) => ids.has(id))
    }, 30_000, 'core_blocks to equal the document')
    const resurrected = await sql(database.url,
      `SELECT COUNT(*) FROM core_blocks WHERE workspace_id = '${workspaceId}' AND deleted_at IS NULL
         AND id IN (${deleted.map((id) => `'${id}'`).join(',')})`)
    assert.equal(resurrected[0][0], '0')
    // One log: no seq was written twice by two owners.
    const forks = await sql(database.url,
      `SELECT COUNT(*) - COUNT(DISTINCT seq) FROM workspace_update_log WHERE workspace_id = '${workspaceId}'`)
    assert.equal(forks[0][0], '0')
  })

  it('HTTP reaches the owner from any node', async () => {
    const survivor = nodes.find((n) => n.running)
    const other = nodes.filter((n) => n.running).find((n) => n !== survivor)
    const { user, workspaceId } = await survivor.ownerWithWorkspace('http')
    const c = connectClient(survivor, workspaceId, user.token, { name: 'watcher' })
    clients.push(c)
    await synced(c.provider)
    const id = crypto.randomUUID()
    await other.expect(201, 'POST', `/workspaces/${workspaceId}/blocks`, {
      token: user.token, body: { id, type: 'NODE', name: 'via the other node' }
    })
    await waitFor(() => id in snapshot(c.doc).blocks, 10_000, 'the block made over HTTP to arrive live')
  })
})
