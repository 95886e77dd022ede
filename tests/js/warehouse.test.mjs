// The warehouse with stock clients: blocks drawn in a y-websocket provider are saved as a template
// over HTTP, and inserting it makes them appear in every provider's document at once.
//   cd tests/js && npm ci && npm test      (NOX_SYNC_BIN overrides target/debug/nox-sync)

import { describe, it, before, after, afterEach } from 'node:test'
import assert from 'node:assert/strict'

import {
  startServer, removeDataDir, connectClient, synced, destroyClients, snapshot, waitConverged,
  waitFor, addBlock, addRelation
} from './helpers.mjs'

const clients = []
function client (server, workspaceId, token, opts) {
  const c = connectClient(server, workspaceId, token, opts)
  clients.push(c)
  return c
}
afterEach(() => destroyClients(clients))

describe('warehouse templates', () => {
  let server

  before(async () => { server = await startServer() })
  after(async () => {
    destroyClients(clients)
    if (server) {
      await server.kill()
      await removeDataDir(server.dataDir)
    }
  })

  it('save a selection, insert it, and every provider sees the copy', async () => {
    const { user, orgId, workspaceId } = await server.ownerWithWorkspace('templates')
    const token = user.token
    const warehouse = await server.expect(201, 'POST', `/orgs/${orgId}/warehouses`, { token, body: { name: 'Assets' } })

    const a = client(server, workspaceId, token, { name: 'A' })
    const b = client(server, workspaceId, await server.login(user), { name: 'B' })
    await Promise.all([synced(a.provider), synced(b.provider)])
    const group = addBlock(a.doc, { name: 'card', type: 'GROUP', visual: { x: 40, y: 40 } })
    const label = addBlock(a.doc, { name: 'label', type: 'NODE', parent: group, visual: { x: 50, y: 70 } })
    addRelation(a.doc, group, label, 'CONTAINS')
    // The server has the drawing once its HTTP view of the document shows it.
    await waitFor(async () => {
      const r = await server.api('GET', `/workspaces/${workspaceId}/blocks`, { token })
      return r.body?.items?.length === 2
    }, 15_000, 'the server to hold the drawing')

    const template = await server.expect(201, 'POST', `/warehouses/${warehouse.id}/templates/from-selection`, {
      token, body: { workspace_id: workspaceId, block_ids: [group], name: 'card' }
    })
    assert.equal(template.structure_data.blocks.length, 2)
    assert.equal(template.structure_data.relations.length, 1)

    const inserted = await server.expect(201, 'POST', `/workspaces/${workspaceId}/templates/${template.id}/instantiate`, {
      token, body: { x: 400, y: 300 }
    })
    assert.equal(inserted.block_ids.length, 2)
    assert.equal(inserted.relation_ids.length, 1)

    const json = await waitConverged([a.doc, b.doc], 15_000, (s) =>
      Object.keys(s.blocks).length === 4 && Object.keys(s.relations).length === 2)
    assert.deepStrictEqual(snapshot(b.doc), json)
    const copies = inserted.block_ids.map((id) => json.blocks[id])
    for (const copy of copies) assert.equal(copy.origin_asset_id, template.id)
    const copyOfGroup = inserted.block_ids.find((id) => json.blocks[id].type === 'GROUP')
    const copyOfLabel = inserted.block_ids.find((id) => json.blocks[id].type === 'NODE')
    assert.deepStrictEqual([json.blocks[copyOfGroup].visual.x, json.blocks[copyOfGroup].visual.y], [400, 300])
    assert.deepStrictEqual([json.blocks[copyOfLabel].visual.x, json.blocks[copyOfLabel].visual.y], [410, 330])
    assert.equal(json.blocks[copyOfLabel].parent_block_id, copyOfGroup)
    assert.deepStrictEqual(json.relations[inserted.relation_ids[0]], {
      source_block_id: copyOfGroup, target_block_id: copyOfLabel, type: 'CONTAINS', rules: {}, visual: {}
    })
    // The copy is an ordinary part of the document: a provider can edit it.
    b.doc.getMap('blocks').get(copyOfLabel).set('name', 'edited copy')
    await waitFor(() => a.doc.getMap('blocks').get(copyOfLabel)?.get('name') === 'edited copy', 15_000, 'A to see B edit the copy')
  })
})
