// The canvas of one workspace: blocks as boxes, relations as lines, live cursors and edit locks,
// all over one y-websocket connection to the server's room.
//
// Document shape (DESIGN §4): `blocks`: id → Y.Map { type, name, parent_block_id, config: Y.Map,
// visual: Y.Map { x, y, w, h, color } }; `relations`: id → Y.Map { source_block_id,
// target_block_id, type, rules: Y.Map, visual: Y.Map }.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'

import { api, freshToken } from './api.js'
import { colorFor, h, toast } from './dom.js'
import { LockClient } from './locks.js'
import { Comments, commentPanel } from './comments.js'

const MESSAGE_ACK = 6
const DEFAULT_W = 160
const DEFAULT_H = 64
const DEFAULT_COLOR = '#eef3ff'
const BOARD_W = 4000
const BOARD_H = 3000
const DRAG_THRESHOLD = 3
const SVG_NS = 'http://www.w3.org/2000/svg'

function lockIcon () {
  const svg = document.createElementNS(SVG_NS, 'svg')
  svg.setAttribute('viewBox', '0 0 10 12')
  svg.setAttribute('class', 'lock-icon')
  svg.setAttribute('aria-hidden', 'true')
  svg.innerHTML = '<path d="M2.5 5V3.5a2.5 2.5 0 0 1 5 0V5" fill="none" stroke="currentColor" stroke-width="1.4"/><rect x="1" y="5" width="8" height="6.5" rx="1" fill="currentColor"/>'
  return svg
}

/** The part of the centre-to-centre line of two boxes that lies outside both boxes. */
function segment (a, b) {
  const [ax, ay] = [a.x + a.w / 2, a.y + a.h / 2]
  const [bx, by] = [b.x + b.w / 2, b.y + b.h / 2]
  const dx = bx - ax
  const dy = by - ay
  const along = (box) => Math.min(dx ? box.w / 2 / Math.abs(dx) : Infinity, dy ? box.h / 2 / Math.abs(dy) : Infinity)
  const ta = along(a)
  const tb = along(b)
  if (!Number.isFinite(ta) || ta + tb >= 1) return [ax, ay, bx, by] // overlapping boxes
  return [ax + dx * ta, ay + dy * ta, bx - dx * tb, by - dy * tb]
}

function num (value, fallback) {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback
}

export function openCanvas (root, { workspaceId, me, onLeave, onSignOut }) {
  const ydoc = new Y.Doc()
  const blocks = ydoc.getMap('blocks')
  const relations = ydoc.getMap('relations')
  const myName = me.full_name || me.email
  const myColor = colorFor(me.id)

  // ---- DOM ----
  const status = h('span', { class: 'status', 'data-testid': 'status', 'data-state': 'connecting', role: 'status' }, 'Connecting…')
  const presence = h('span', { class: 'presence', 'data-testid': 'presence', 'aria-label': 'People here' })
  const title = h('span', { class: 'ws-name', 'data-testid': 'workspace-name' }, 'Canvas')
  const comments = new Comments({ workspaceId, me, onChange: () => scheduleRender() })
  const panel = commentPanel(comments)
  const commentsButton = h('button', {
    type: 'button',
    'data-testid': 'toggle-comments',
    'aria-pressed': 'true',
    onclick: () => {
      panel.el.hidden = !panel.el.hidden
      commentsButton.setAttribute('aria-pressed', String(!panel.el.hidden))
    }
  }, 'Comments')
  const deleteButton = h('button', { type: 'button', 'data-testid': 'delete-selected', disabled: true, onclick: () => deleteSelection() }, 'Delete')
  const toolbar = h('header', { class: 'toolbar' },
    h('button', { type: 'button', class: 'link', onclick: () => onLeave() }, '← Workspaces'),
    title,
    h('button', { type: 'button', 'data-testid': 'add-block', onclick: () => addBlock() }, '+ Block'),
    deleteButton,
    commentsButton,
    h('span', { class: 'hint' }, 'Drag to move · double-click to rename · shift-click two blocks to connect · Delete removes the selection'),
    presence,
    status,
    h('button', { type: 'button', class: 'link', onclick: () => onSignOut() }, 'Sign out'))
  const svg = document.createElementNS(SVG_NS, 'svg')
  svg.setAttribute('class', 'relations')
  svg.setAttribute('width', BOARD_W)
  svg.setAttribute('height', BOARD_H)
  const blockLayer = h('div', { class: 'blocks' })
  const cursorLayer = h('div', { class: 'cursors', 'aria-hidden': 'true' })
  const board = h('div', { class: 'board', 'data-testid': 'board', style: { width: BOARD_W + 'px', height: BOARD_H + 'px' } }, svg, blockLayer, cursorLayer)
  const scroller = h('div', { class: 'scroller' }, board)
  root.replaceChildren(toolbar, h('div', { class: 'canvas-body' }, scroller, panel.el))

  api('GET', `/workspaces/${workspaceId}`).then((ws) => {
    if (ws && ws.name) { title.textContent = ws.name; document.title = `${ws.name} · Nox Sync` }
  }).catch((err) => toast(`Cannot open this workspace: ${err.message}`, 'error'))

  // ---- connection ----
  const wsUrl = location.origin.replace(/^http/, 'ws') + '/ws/workspaces'
  const provider = new WebsocketProvider(wsUrl, workspaceId, ydoc, {
    params: { token: localStorage.getItem('nox.access_token') || '', locks: '1', acks: '1', comments: '1' },
    connect: false,
    disableBc: true
  })
  const awareness = provider.awareness
  awareness.setLocalStateField('user', { name: myName, color: myColor })

  // Durable acknowledgements: the server counts every sync-step-2/update frame it commits from
  // this connection and answers [6, count]. Count what we send on each socket the same way.
  let sent = 0
  let acked = 0
  let connState = 'connecting'
  provider.messageHandlers[MESSAGE_ACK] = (_encoder, decoder) => {
    acked += decoding.readVarUint(decoder)
    renderStatus()
  }
  const locks = new LockClient(provider, {
    onChange: () => scheduleRender(),
    onOther: (msg) => comments.handle(msg),
    onLost: (id, reason) => {
      if (drag && drag.id === id) endDrag(false)
      if (reason !== 'disconnected') toast(`Your lock on "${blockName(id)}" was ${reason === 'broken' ? 'broken by an admin' : 'lost (' + reason + ')'}`, 'error')
    }
  })
  provider.on('status', ({ status: s }) => {
    // Comment events missed while offline: read the list again on every (re)connect.
    if (s === 'connected') comments.reload().catch((err) => toast(`Comments unavailable: ${err.message}`, 'error'))
    connState = s
    if (s === 'connected' && provider.ws) {
      sent = 0
      acked = 0
      const ws = provider.ws
      const send = ws.send.bind(ws)
      ws.send = (data) => {
        if (data instanceof Uint8Array && data[0] === 0 && (data[1] === 1 || data[1] === 2)) sent++
        send(data)
      }
    }
    renderStatus()
  })
  provider.on('sync', () => renderStatus())
  provider.on('connection-close', () => {
    // Refresh the token before the next reconnect attempt reads `params`.
    freshToken().then((token) => { if (token) provider.params.token = token })
  })
  freshToken().then((token) => {
    if (destroyed) return
    provider.params.token = token || ''
    provider.connect()
  })
  ydoc.on('update', () => renderStatus())

  function renderStatus () {
    let state, text
    if (connState !== 'connected') {
      state = connState === 'connecting' ? 'connecting' : 'offline'
      text = state === 'connecting' ? 'Connecting…' : 'Offline'
      if (sent > acked) text += ' · unsaved changes'
    } else if (!provider.synced) {
      state = 'syncing'; text = 'Syncing…'
    } else if (sent > acked) {
      state = 'saving'; text = 'Saving…'
    } else {
      state = 'saved'; text = 'Saved'
    }
    status.dataset.state = state
    status.textContent = text
  }

  // ---- rendering ----
  const blockEls = new Map()
  const relationEls = new Map()
  const cursorEls = new Map()
  let selected = null // { kind: 'block' | 'relation', id }
  let connectFrom = null
  let editing = null // block id being renamed
  let drag = null
  let renderQueued = false
  let destroyed = false

  function scheduleRender () {
    if (renderQueued || destroyed) return
    renderQueued = true
    requestAnimationFrame(() => { renderQueued = false; render() })
  }

  function visualOf (block) {
    const v = block.get('visual')
    const get = (k) => (v instanceof Y.Map ? v.get(k) : undefined)
    return {
      x: num(get('x'), 0),
      y: num(get('y'), 0),
      w: Math.max(60, num(get('w'), DEFAULT_W)),
      h: Math.max(32, num(get('h'), DEFAULT_H)),
      color: typeof get('color') === 'string' ? get('color') : DEFAULT_COLOR
    }
  }

  function blockName (id) {
    const block = blocks.get(id)
    const name = block instanceof Y.Map ? block.get('name') : null
    return typeof name === 'string' && name ? name : id.slice(0, 8)
  }

  /** The number of open comments on a block, as a badge (none when there are none). */
  function renderCommentBadge (el, id) {
    const count = comments.countFor(id)
    let badge = el.querySelector('.comment-badge')
    if (!count) { if (badge) badge.remove(); return }
    if (!badge) {
      badge = h('span', { class: 'comment-badge', 'data-testid': `comment-badge-${id}` })
      el.append(badge)
    }
    badge.textContent = String(count)
    badge.title = `${count} open comment${count === 1 ? '' : 's'}`
  }

  function render () {
    // Blocks.
    const seen = new Set()
    for (const [id, block] of blocks.entries()) {
      if (!(block instanceof Y.Map)) continue
      seen.add(id)
      let el = blockEls.get(id)
      if (!el) { el = createBlockEl(id); blockEls.set(id, el); blockLayer.append(el) }
      const v = drag && drag.id === id && drag.phase === 'moving' ? { ...visualOf(block), x: drag.x, y: drag.y } : visualOf(block)
      el.style.transform = `translate(${v.x}px, ${v.y}px)`
      el.style.width = v.w + 'px'
      el.style.height = v.h + 'px'
      el.style.background = v.color
      el.dataset.x = String(v.x)
      el.dataset.y = String(v.y)
      if (editing !== id) el.querySelector('.name').textContent = blockName(id)
      el.classList.toggle('selected', selected && selected.kind === 'block' && selected.id === id)
      el.classList.toggle('connect-from', connectFrom === id)
      const lock = locks.get(id)
      const mine = lock && (locks.held.has(id) || lock.user_id === me.id)
      el.classList.toggle('locked', !!lock && !mine)
      el.classList.toggle('locked-mine', !!mine)
      let badge = el.querySelector('.lock-badge')
      if (lock) {
        if (!badge) {
          badge = h('span', { class: 'lock-badge', 'data-testid': `lock-badge-${id}` })
          el.append(badge)
        }
        const who = mine ? 'you' : (lock.user_name || 'someone')
        badge.replaceChildren(lockIcon(), document.createTextNode(who))
        badge.title = mine ? 'You are editing this block' : `${who} is editing this block`
        badge.dataset.userId = lock.user_id
      } else if (badge) {
        badge.remove()
      }
      renderCommentBadge(el, id)
    }
    for (const [id, el] of blockEls) {
      if (!seen.has(id)) { el.remove(); blockEls.delete(id) }
    }
    if (selected && selected.kind === 'block' && !seen.has(selected.id)) selected = null
    if (connectFrom && !seen.has(connectFrom)) connectFrom = null
    const selectedBlock = selected && selected.kind === 'block' ? selected.id : null
    panel.render(selectedBlock, selectedBlock ? blockName(selectedBlock) : '')

    // Relations: lines between box centres.
    const seenRel = new Set()
    for (const [id, rel] of relations.entries()) {
      if (!(rel instanceof Y.Map)) continue
      const a = blocks.get(rel.get('source_block_id'))
      const b = blocks.get(rel.get('target_block_id'))
      if (!(a instanceof Y.Map) || !(b instanceof Y.Map)) continue
      seenRel.add(id)
      let line = relationEls.get(id)
      if (!line) {
        line = document.createElementNS(SVG_NS, 'line')
        line.setAttribute('data-testid', `relation-${id}`)
        line.setAttribute('marker-end', 'url(#arrow)')
        line.addEventListener('pointerdown', (event) => {
          event.stopPropagation()
          select({ kind: 'relation', id })
        })
        relationEls.set(id, line)
        svg.append(line)
      }
      const box = (blockId, block) => drag && drag.id === blockId && drag.phase === 'moving' ? { ...visualOf(block), x: drag.x, y: drag.y } : visualOf(block)
      const [x1, y1, x2, y2] = segment(box(rel.get('source_block_id'), a), box(rel.get('target_block_id'), b))
      line.setAttribute('x1', x1)
      line.setAttribute('y1', y1)
      line.setAttribute('x2', x2)
      line.setAttribute('y2', y2)
      line.classList.toggle('selected', !!selected && selected.kind === 'relation' && selected.id === id)
    }
    for (const [id, line] of relationEls) {
      if (!seenRel.has(id)) { line.remove(); relationEls.delete(id) }
    }
    if (selected && selected.kind === 'relation' && !seenRel.has(selected.id)) selected = null
    deleteButton.disabled = !selected
  }

  // Arrow head for relation lines.
  const defs = document.createElementNS(SVG_NS, 'defs')
  defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker>'
  svg.append(defs)

  function renderCursors () {
    const seen = new Set()
    const people = new Map()
    for (const [clientId, state] of awareness.getStates()) {
      if (!state || !state.user) continue
      const user = state.user
      const key = user.id || `client-${clientId}`
      if (clientId !== ydoc.clientID) people.set(key, user)
      if (clientId === ydoc.clientID || !state.cursor) continue
      const { x, y } = state.cursor
      if (typeof x !== 'number' || typeof y !== 'number') continue
      seen.add(clientId)
      let el = cursorEls.get(clientId)
      if (!el) {
        el = h('div', { class: 'cursor' }, h('span', { class: 'pointer' }), h('span', { class: 'label' }))
        cursorEls.set(clientId, el)
        cursorLayer.append(el)
      }
      el.dataset.testid = `cursor-${key}`
      const color = typeof user.color === 'string' ? user.color : colorFor(key)
      el.style.transform = `translate(${x}px, ${y}px)`
      el.style.setProperty('--cursor-color', color)
      el.querySelector('.label').textContent = typeof user.name === 'string' ? user.name : 'someone'
    }
    for (const [clientId, el] of cursorEls) {
      if (!seen.has(clientId)) { el.remove(); cursorEls.delete(clientId) }
    }
    presence.replaceChildren(...[...people.entries()].map(([key, user]) => h('span', {
      class: 'avatar',
      title: String(user.name || ''),
      'data-testid': `presence-${key}`,
      style: { background: typeof user.color === 'string' ? user.color : colorFor(key) }
    }, String(user.name || '?').slice(0, 1).toUpperCase())))
  }
  awareness.on('change', renderCursors)

  // ---- editing ----
  function select (sel) {
    selected = sel
    scheduleRender()
  }

  function addBlock () {
    const id = crypto.randomUUID()
    const x = Math.round(scroller.scrollLeft + scroller.clientWidth / 2 - DEFAULT_W / 2 + (Math.random() - 0.5) * 80)
    const y = Math.round(scroller.scrollTop + scroller.clientHeight / 2 - DEFAULT_H / 2 + (Math.random() - 0.5) * 80)
    ydoc.transact(() => {
      const block = new Y.Map()
      blocks.set(id, block)
      block.set('type', 'NODE')
      block.set('name', `Block ${blocks.size}`)
      block.set('parent_block_id', null)
      block.set('config', new Y.Map())
      const visual = new Y.Map()
      block.set('visual', visual)
      visual.set('x', Math.max(0, x))
      visual.set('y', Math.max(0, y))
      visual.set('w', DEFAULT_W)
      visual.set('h', DEFAULT_H)
      visual.set('color', DEFAULT_COLOR)
    })
    select({ kind: 'block', id })
    return id
  }

  function refuse (id, holder) {
    const who = (holder && holder.user_name) || 'someone else'
    toast(`"${blockName(id)}" is locked by ${who}`, 'warn')
  }

  function deleteSelection () {
    if (!selected) return
    if (selected.kind === 'relation') {
      relations.delete(selected.id)
      select(null)
      return
    }
    const id = selected.id
    const other = locks.heldByOther(id)
    if (other && other.user_id !== me.id) { refuse(id, other); return }
    ydoc.transact(() => {
      for (const [relId, rel] of relations.entries()) {
        if (rel instanceof Y.Map && (rel.get('source_block_id') === id || rel.get('target_block_id') === id)) relations.delete(relId)
      }
      blocks.delete(id)
    })
    locks.release(id)
    select(null)
  }

  function connect (id) {
    if (!connectFrom) { connectFrom = id; scheduleRender(); return }
    if (connectFrom === id) { connectFrom = null; scheduleRender(); return }
    const source = connectFrom
    connectFrom = null
    const relId = crypto.randomUUID()
    ydoc.transact(() => {
      const rel = new Y.Map()
      relations.set(relId, rel)
      rel.set('source_block_id', source)
      rel.set('target_block_id', id)
      rel.set('type', 'LINK')
      rel.set('rules', new Y.Map())
      rel.set('visual', new Y.Map())
    })
    select({ kind: 'relation', id: relId })
  }

  // Dragging: past a small threshold the page asks for the block's lock; the box only moves once
  // the lock is granted (offline, it moves without one — the CRDT merges it later).
  function onBlockPointerDown (id, el, event) {
    if (event.button !== 0 || editing === id) return
    event.stopPropagation()
    if (event.shiftKey) { connect(id); return }
    select({ kind: 'block', id })
    const block = blocks.get(id)
    if (!(block instanceof Y.Map)) return
    const v = visualOf(block)
    drag = { id, el, pointerId: event.pointerId, sx: event.clientX, sy: event.clientY, ox: v.x, oy: v.y, x: v.x, y: v.y, phase: 'pressed', locked: false }
    try { el.setPointerCapture(event.pointerId) } catch {}
  }

  function onBlockPointerMove (id, event) {
    if (!drag || drag.id !== id || drag.pointerId !== event.pointerId) return
    const dx = event.clientX - drag.sx
    const dy = event.clientY - drag.sy
    drag.x = Math.max(0, Math.round(drag.ox + dx))
    drag.y = Math.max(0, Math.round(drag.oy + dy))
    if (drag.phase === 'pressed' && Math.hypot(dx, dy) >= DRAG_THRESHOLD) startDrag(drag)
    if (drag && drag.phase === 'moving') { writePosition(drag); scheduleRender() }
  }

  function startDrag (d) {
    const other = locks.heldByOther(d.id)
    if (other && other.user_id !== me.id) {
      d.phase = 'refused'
      refuse(d.id, other)
      return
    }
    if (!provider.wsconnected) { d.phase = 'moving'; return }
    d.phase = 'acquiring'
    locks.acquire(d.id).then((res) => {
      if (res.ok) {
        d.locked = true
        if (drag !== d) { locks.release(d.id); return } // dropped while waiting
        d.phase = 'moving'
        writePosition(d)
        scheduleRender()
      } else {
        if (drag === d) d.phase = 'refused'
        if (res.reason === 'offline' || res.reason === 'disconnected') toast(`Cannot lock "${blockName(d.id)}": ${res.reason}`, 'warn')
        else refuse(d.id, res.holder)
        scheduleRender()
      }
    })
  }

  let writeQueued = false
  function writePosition (d) {
    if (writeQueued) return
    writeQueued = true
    requestAnimationFrame(() => {
      writeQueued = false
      flushPosition(d)
    })
  }

  function flushPosition (d) {
    const block = blocks.get(d.id)
    if (!(block instanceof Y.Map)) return
    let visual = block.get('visual')
    ydoc.transact(() => {
      if (!(visual instanceof Y.Map)) { visual = new Y.Map(); block.set('visual', visual) }
      if (visual.get('x') !== d.x) visual.set('x', d.x)
      if (visual.get('y') !== d.y) visual.set('y', d.y)
    })
  }

  function endDrag (commit = true) {
    const d = drag
    if (!d) return
    drag = null
    try { d.el.releasePointerCapture(d.pointerId) } catch {}
    if (d.phase === 'moving' && commit) flushPosition(d)
    if (d.locked) locks.release(d.id)
    scheduleRender()
  }

  function onBlockPointerUp (id, event) {
    if (!drag || drag.id !== id || drag.pointerId !== event.pointerId) return
    onBlockPointerMove(id, event)
    endDrag(true)
  }

  async function rename (id, el) {
    if (editing) return
    const other = locks.heldByOther(id)
    if (other && other.user_id !== me.id) { refuse(id, other); return }
    let locked = false
    if (provider.wsconnected) {
      const res = await locks.acquire(id)
      if (!res.ok) {
        if (res.holder) refuse(id, res.holder)
        else toast(`Cannot lock "${blockName(id)}": ${res.reason}`, 'warn')
        return
      }
      locked = true
    }
    if (!blocks.has(id)) { if (locked) locks.release(id); return }
    editing = id
    const nameEl = el.querySelector('.name')
    const input = h('input', { type: 'text', class: 'rename', value: blockName(id), 'aria-label': 'Block name', 'data-testid': `rename-${id}` })
    nameEl.replaceChildren(input)
    input.focus()
    input.select()
    let done = false
    const finish = (save) => {
      if (done) return
      done = true
      const value = input.value.trim()
      const block = blocks.get(id)
      if (save && value && block instanceof Y.Map && block.get('name') !== value) block.set('name', value)
      editing = null
      nameEl.textContent = blockName(id)
      if (locked) locks.release(id)
      scheduleRender()
    }
    input.addEventListener('keydown', (event) => {
      event.stopPropagation()
      if (event.key === 'Enter') finish(true)
      else if (event.key === 'Escape') finish(false)
    })
    input.addEventListener('blur', () => finish(true))
    input.addEventListener('pointerdown', (event) => event.stopPropagation())
  }

  function createBlockEl (id) {
    const el = h('div', {
      class: 'block',
      tabindex: '0',
      role: 'button',
      'data-testid': `block-${id}`,
      'data-block-id': id
    }, h('span', { class: 'name' }))
    el.addEventListener('pointerdown', (event) => onBlockPointerDown(id, el, event))
    el.addEventListener('pointermove', (event) => onBlockPointerMove(id, event))
    el.addEventListener('pointerup', (event) => onBlockPointerUp(id, event))
    el.addEventListener('pointercancel', () => { if (drag && drag.id === id) endDrag(true) })
    el.addEventListener('lostpointercapture', () => { if (drag && drag.id === id) endDrag(true) })
    el.addEventListener('dblclick', () => rename(id, el))
    el.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !editing) { event.preventDefault(); rename(id, el) }
    })
    el.setAttribute('aria-label', 'Block')
    return el
  }

  board.addEventListener('pointerdown', (event) => {
    if (event.target === board || event.target === svg) { select(null); connectFrom = null }
  })

  // Live cursor (board coordinates), throttled.
  let lastCursor = 0
  let cursorTimer = null
  const publishCursor = (x, y) => {
    awareness.setLocalStateField('cursor', { x, y })
    lastCursor = Date.now()
  }
  board.addEventListener('pointermove', (event) => {
    const rect = board.getBoundingClientRect()
    const x = Math.round(event.clientX - rect.left)
    const y = Math.round(event.clientY - rect.top)
    clearTimeout(cursorTimer)
    const wait = 40 - (Date.now() - lastCursor)
    if (wait <= 0) publishCursor(x, y)
    else cursorTimer = setTimeout(() => publishCursor(x, y), wait)
  })
  board.addEventListener('pointerleave', () => {
    clearTimeout(cursorTimer)
    awareness.setLocalStateField('cursor', null)
  })

  const onKey = (event) => {
    const tag = event.target && event.target.tagName
    if (tag === 'INPUT' || tag === 'TEXTAREA' || editing) return
    if (event.key === 'Delete' || event.key === 'Backspace') {
      if (selected) { event.preventDefault(); deleteSelection() }
    } else if (event.key === 'Escape') {
      connectFrom = null
      select(null)
    }
  }
  document.addEventListener('keydown', onKey)

  blocks.observeDeep(scheduleRender)
  relations.observeDeep(scheduleRender)
  render()
  renderStatus()

  const onUnload = () => { try { provider.disconnect() } catch {} }
  window.addEventListener('beforeunload', onUnload)

  // Test and debugging hook: the page's doc and clients.
  window.noxCanvas = { ydoc, provider, locks, comments, addBlock }

  return function close () {
    destroyed = true
    document.removeEventListener('keydown', onKey)
    window.removeEventListener('beforeunload', onUnload)
    clearTimeout(cursorTimer)
    locks.destroy()
    provider.destroy()
    ydoc.destroy()
    if (window.noxCanvas && window.noxCanvas.ydoc === ydoc) delete window.noxCanvas
    document.title = 'Nox Sync'
  }
}
