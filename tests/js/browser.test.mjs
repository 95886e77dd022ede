// The canvas page in a real browser (issue 5 item 7): Debian `chromium` driven by playwright-core,
// two browser contexts as two users on one workspace of a real `nox-sync serve`.
//   A drags a block → B sees it move; A holds a drag (the block's lock) → B sees the badge and
//   cannot drag; A closes its page → the lock is released for B, who can then drag. B comments on
//   a block in the panel, and a comment posted over HTTP arrives live as a badge count.
// Screenshots of every step go to target/test-artifacts/. Needs /usr/bin/chromium (or
// NOX_CHROMIUM); scripts/test.sh installs it. Without it this test fails: it is never skipped.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

import { chromium } from 'playwright-core'

import { startServer, removeDataDir, waitFor } from './helpers.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..', '..')
const webDir = path.join(repoRoot, 'web')
const artifacts = path.join(repoRoot, 'target', 'test-artifacts')
const CHROMIUM = process.env.NOX_CHROMIUM || '/usr/bin/chromium'

/** The invitation token the server "mailed" to `email` (read from mail_outbox over the socket). */
function invitationToken (dataDir, email) {
  const socketDir = path.join(dataDir, 'postgres', 'run')
  const sql = `select body from mail_outbox where kind = 'invitation' and lower(to_email) = lower('${email.replace(/'/g, "''")}') order by created_at desc limit 1`
  const body = execFileSync('psql', ['-h', socketDir, '-U', 'nox', '-d', 'nox', '-Atc', sql], { encoding: 'utf8' })
  const m = body.match(/Invitation token: (\S+)/)
  if (!m) throw new Error(`no invitation token in mail_outbox for ${email}: ${JSON.stringify(body)}`)
  return m[1]
}

describe('canvas page in a browser', () => {
  let server
  let browser
  let owner // { user, orgId, projectId, workspaceId }
  let bob // { email, password, token, userId }
  const pageErrors = []
  let shot = 0

  async function screenshot (page, name) {
    shot++
    const file = path.join(artifacts, `browser-${String(shot).padStart(2, '0')}-${name}.png`)
    await page.screenshot({ path: file, fullPage: false })
    return file
  }

  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true })
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package (apt-get install chromium; scripts/test.sh does it) or set NOX_CHROMIUM`)
    }
    // Use the server's own embedded PostgreSQL so the test can read the invitation mail.
    server = await startServer({ env: { DATABASE_URL: undefined } })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  })

  after(async () => {
    try { if (browser) await browser.close() } catch {}
    if (server) {
      await server.kill()
      await removeDataDir(server.dataDir)
    }
  })

  it('the committed bundle in server/assets is up to date with web/', () => {
    if (!fs.existsSync(path.join(webDir, 'node_modules', 'esbuild'))) {
      execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: webDir, stdio: 'inherit' })
    }
    try {
      execFileSync(process.execPath, ['build.mjs', '--check'], { cwd: webDir, encoding: 'utf8', stdio: 'pipe' })
    } catch (err) {
      assert.fail(`${err.stderr || err.message}`)
    }
  })

  it('serves the page, the bundle and the workspace route', async () => {
    for (const [pathname, type] of [
      ['/', 'text/html'],
      [`/w/${crypto.randomUUID()}`, 'text/html'],
      ['/assets/app.js', 'text/javascript'],
      ['/assets/app.css', 'text/css']
    ]) {
      const res = await fetch(server.base + pathname)
      const text = await res.text()
      assert.equal(res.status, 200, pathname)
      assert.ok(res.headers.get('content-type').startsWith(type), `${pathname}: ${res.headers.get('content-type')}`)
      assert.ok(text.length > 100, pathname)
      const again = await fetch(server.base + pathname, { headers: { 'if-none-match': res.headers.get('etag') } })
      assert.equal(again.status, 304, `${pathname} revalidates`)
    }
  })

  it('sets up an owner and an Editor member on one workspace', async () => {
    const alice = await server.register('Alice')
    const slug = `alice-${crypto.randomUUID().slice(0, 8)}`
    const org = await server.expect(201, 'POST', '/orgs', { token: alice.token, body: { name: 'Alice & Co', slug } })
    const project = await server.expect(201, 'POST', `/orgs/${org.id}/projects`, { token: alice.token, body: { name: 'Main', slug: 'main' } })
    const ws = await server.expect(201, 'POST', `/projects/${project.id}/workspaces`, { token: alice.token, body: { name: 'Architecture', type: 'CANVAS' } })
    owner = { user: alice, orgId: org.id, projectId: project.id, workspaceId: ws.id }
    bob = await server.register('Bob')
    const roles = await server.expect(200, 'GET', `/orgs/${owner.orgId}/roles`, { token: owner.user.token })
    const editor = roles.items.find((r) => r.name === 'Editor')
    assert.ok(editor, `an Editor role in ${JSON.stringify(roles.items.map((r) => r.name))}`)
    await server.expect(201, 'POST', `/orgs/${owner.orgId}/invitations`, {
      token: owner.user.token, body: { email: bob.email, role_id: editor.id }
    })
    const token = invitationToken(server.dataDir, bob.email)
    const accepted = await server.api('POST', '/invitations/accept', { token: bob.token, body: { token } })
    assert.ok(accepted.status === 200 || accepted.status === 201, `accept: ${accepted.status} ${accepted.text}`)
  })

  it('two users co-edit, see each other, and respect each other\'s locks', async () => {
    assert.ok(owner && bob, 'the setup test passed')
    const { workspaceId } = owner

    async function openAs (user, name) {
      const context = await browser.newContext({ viewport: { width: 1200, height: 800 } })
      const page = await context.newPage()
      page.on('pageerror', (err) => pageErrors.push(`${name}: ${err.message}`))
      page.on('console', (msg) => {
        if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) pageErrors.push(`${name} console: ${msg.text()}`)
      })
      page.on('response', (res) => { if (res.status() >= 400) pageErrors.push(`${name}: ${res.status()} ${res.request().method()} ${res.url()}`) })
      await page.goto(server.base + '/')
      await page.getByLabel('Email').fill(user.email)
      await page.getByLabel('Password').fill(user.password)
      await page.getByTestId('auth-submit').click()
      await page.getByTestId('me').waitFor()
      return { context, page, name }
    }

    // A signs in and walks the picker to the workspace; B opens /w/{id} directly.
    const a = await openAs(owner.user, 'A')
    await a.page.getByTestId(`org-${owner.orgId}`).click()
    await a.page.getByTestId(`project-${owner.projectId}`).click()
    await a.page.getByTestId(`workspace-${workspaceId}`).click()
    await a.page.waitForURL(`**/w/${workspaceId}`)
    const b = await openAs(bob, 'B')
    await b.page.goto(`${server.base}/w/${workspaceId}`)
    for (const p of [a.page, b.page]) {
      await p.waitForSelector('[data-testid="status"][data-state="saved"]', { timeout: 15_000 })
    }

    // A adds a block; B sees it.
    await a.page.getByTestId('add-block').click()
    const blockTestId = await a.page.locator('[data-testid^="block-"]').first().getAttribute('data-testid')
    const blockId = blockTestId.slice('block-'.length)
    const blockA = a.page.getByTestId(blockTestId)
    const blockB = b.page.getByTestId(blockTestId)
    await blockB.waitFor({ timeout: 10_000 })
    await screenshot(a.page, 'a-added-block')

    // Live cursors: B moves over the board, A sees "Bob".
    await b.page.mouse.move(300, 500)
    await b.page.mouse.move(320, 520, { steps: 4 })
    const cursor = a.page.getByTestId(`cursor-${bob.userId}`)
    await cursor.waitFor({ timeout: 10_000 })
    assert.match(await cursor.textContent(), /Bob/)

    // 1. A drags the block by (+220, +130) → B sees it move there.
    const pos = async (locator) => {
      const box = await locator.boundingBox()
      return { x: box.x, y: box.y, cx: box.x + box.width / 2, cy: box.y + box.height / 2 }
    }
    const model = async (page) => page.evaluate((id) => {
      const v = window.noxCanvas.ydoc.getMap('blocks').get(id).get('visual')
      return { x: v.get('x'), y: v.get('y') }
    }, blockId)
    const a0 = await pos(blockA)
    const b0 = await pos(blockB)
    await a.page.mouse.move(a0.cx, a0.cy)
    await a.page.mouse.down()
    await a.page.mouse.move(a0.cx + 110, a0.cy + 65, { steps: 8 })
    await a.page.mouse.move(a0.cx + 220, a0.cy + 130, { steps: 8 })
    await a.page.mouse.up()
    const a1 = await pos(blockA)
    assert.ok(Math.abs(a1.x - a0.x - 220) <= 3 && Math.abs(a1.y - a0.y - 130) <= 3, `A's box moved: ${JSON.stringify({ a0, a1 })}`)
    await waitFor(async () => {
      const b1 = await pos(blockB)
      return Math.abs(b1.x - b0.x - 220) <= 3 && Math.abs(b1.y - b0.y - 130) <= 3
    }, 10_000, 'B to see the block move by (220, 130)')
    assert.deepEqual(await model(b.page), await model(a.page))
    // A's drag released its lock: no badge anywhere.
    await b.page.getByTestId(`lock-badge-${blockId}`).waitFor({ state: 'detached', timeout: 10_000 })
    await screenshot(b.page, 'b-sees-move')

    // 2. A starts another drag and holds the mouse down: A holds the lock.
    const a2 = await pos(blockA)
    await a.page.mouse.move(a2.cx, a2.cy)
    await a.page.mouse.down()
    await a.page.mouse.move(a2.cx + 15, a2.cy + 10, { steps: 4 })
    const badgeA = a.page.getByTestId(`lock-badge-${blockId}`)
    await badgeA.waitFor({ timeout: 10_000 })
    assert.match(await badgeA.textContent(), /you/)
    const badgeB = b.page.getByTestId(`lock-badge-${blockId}`)
    await badgeB.waitFor({ timeout: 10_000 })
    assert.match(await badgeB.textContent(), /Alice/)
    await screenshot(a.page, 'a-holds-lock')
    await screenshot(b.page, 'b-sees-lock-badge')

    // B's drag is refused: toast, and the box stays where it is (locally and in the doc).
    const b2 = await pos(blockB)
    const modelBefore = await model(b.page)
    await b.page.mouse.move(b2.cx, b2.cy)
    await b.page.mouse.down()
    await b.page.mouse.move(b2.cx + 150, b2.cy + 90, { steps: 8 })
    await b.page.mouse.up()
    const toastB = b.page.getByTestId('toast')
    await toastB.waitFor({ state: 'visible', timeout: 10_000 })
    assert.match(await toastB.textContent(), /locked by Alice/i)
    await sleep(300) // settle: any (wrong) move would have been written by now
    const b3 = await pos(blockB)
    // A's held drag may have nudged it by its own (+15, +10); B's +150 must not show.
    assert.ok(Math.abs(b3.x - b2.x) <= 20 && Math.abs(b3.y - b2.y) <= 15, `B's box did not move: ${JSON.stringify({ b2, b3 })}`)
    const modelAfter = await model(b.page)
    assert.ok(Math.abs(modelAfter.x - modelBefore.x) <= 20, `doc x unchanged: ${JSON.stringify({ modelBefore, modelAfter })}`)
    await screenshot(b.page, 'b-drag-refused')

    // 3. A closes its page (mouse still down) → the server releases A's lock → B's badge goes.
    await a.page.close()
    await a.context.close()
    await badgeB.waitFor({ state: 'detached', timeout: 15_000 })
    await screenshot(b.page, 'b-lock-released')

    // B can now drag it.
    const b4 = await pos(blockB)
    await b.page.mouse.move(b4.cx, b4.cy)
    await b.page.mouse.down()
    await b.page.mouse.move(b4.cx + 75, b4.cy + 45, { steps: 6 })
    await b.page.getByTestId(`lock-badge-${blockId}`).waitFor({ timeout: 10_000 })
    assert.match(await b.page.getByTestId(`lock-badge-${blockId}`).textContent(), /you/)
    await b.page.mouse.move(b4.cx + 150, b4.cy + 90, { steps: 6 })
    await b.page.mouse.up()
    await waitFor(async () => {
      const b5 = await pos(blockB)
      return Math.abs(b5.x - b4.x - 150) <= 3 && Math.abs(b5.y - b4.y - 90) <= 3
    }, 10_000, 'B\'s own drag to move the block by (150, 90)')
    await b.page.getByTestId(`lock-badge-${blockId}`).waitFor({ state: 'detached', timeout: 10_000 })
    // Durably saved: the page says so, and a fresh client (REST, through the room) agrees.
    await b.page.waitForSelector('[data-testid="status"][data-state="saved"]', { timeout: 15_000 })
    const expected = await model(b.page)
    const rest = await server.expect(200, 'GET', `/workspaces/${workspaceId}/blocks/${blockId}`, { token: bob.token })
    assert.equal(rest.visual.x, expected.x, JSON.stringify(rest))
    assert.equal(rest.visual.y, expected.y, JSON.stringify(rest))
    await screenshot(b.page, 'b-dragged-after-release')

    // 4. The rest of the editing UI: rename (double-click), connect (shift-click two blocks),
    //    delete (select + Delete removes the block and its relations).
    await blockB.dblclick()
    const rename = b.page.getByTestId(`rename-${blockId}`)
    await rename.fill('API gateway')
    await rename.press('Enter')
    await waitFor(() => b.page.evaluate((id) => window.noxCanvas.ydoc.getMap('blocks').get(id).get('name'), blockId)
      .then((name) => name === 'API gateway'), 10_000, 'the rename to reach the doc')
    await waitFor(async () => (await blockB.locator('.name').textContent()) === 'API gateway', 5_000, 'the box to show the new name')
    await b.page.getByTestId(`lock-badge-${blockId}`).waitFor({ state: 'detached', timeout: 10_000 })
    await b.page.getByTestId('add-block').click()
    const second = b.page.locator('[data-testid^="block-"]').filter({ hasNotText: 'API gateway' })
    await second.waitFor()
    const secondId = (await second.getAttribute('data-testid')).slice('block-'.length)
    await blockB.click({ modifiers: ['Shift'] })
    await second.click({ modifiers: ['Shift'] })
    const line = b.page.locator('[data-testid^="relation-"]')
    await line.waitFor({ state: 'attached' })
    const relation = await b.page.evaluate(() => window.noxCanvas.ydoc.getMap('relations').toJSON())
    assert.deepEqual(Object.values(relation).map((r) => [r.source_block_id, r.target_block_id, r.type]), [[blockId, secondId, 'LINK']])
    await screenshot(b.page, 'b-renamed-and-connected')
    await second.click()
    await b.page.keyboard.press('Delete')
    await second.waitFor({ state: 'detached' })
    await line.waitFor({ state: 'detached' })
    assert.equal(await b.page.evaluate(() => window.noxCanvas.ydoc.getMap('relations').size), 0)
    await b.page.waitForSelector('[data-testid="status"][data-state="saved"]', { timeout: 15_000 })
    const blocks = await server.expect(200, 'GET', `/workspaces/${workspaceId}/blocks`, { token: bob.token })
    const names = blocks.items.map((blk) => blk.name)
    assert.deepEqual(names, ['API gateway'], JSON.stringify(blocks))

    // 5. Comments: B comments on the selected block in the panel → a badge; a comment Alice
    //    posts over HTTP arrives live in B's panel and badge.
    await blockB.click()
    await waitFor(async () => /API gateway/.test(await b.page.getByTestId('comments-title').textContent()), 5_000, 'the panel to follow the selection')
    await b.page.getByTestId('comment-input').fill('Needs rate limiting')
    await b.page.getByTestId('comment-send').click()
    const commentBadge = b.page.getByTestId(`comment-badge-${blockId}`)
    await commentBadge.waitFor({ timeout: 10_000 })
    assert.equal(await commentBadge.textContent(), '1')
    await server.expect(201, 'POST', `/workspaces/${workspaceId}/comments`, {
      token: owner.user.token, body: { content: 'Agreed, 100 rps', target_type: 'BLOCK', target_id: blockId }
    })
    await waitFor(async () => (await commentBadge.textContent()) === '2', 10_000, 'the live comment to raise the badge')
    await b.page.getByText('Agreed, 100 rps').waitFor({ timeout: 5_000 })
    await screenshot(b.page, 'b-comment-panel')

    await b.context.close()
    assert.deepEqual(pageErrors, [], 'no errors in the pages')
  })
})
