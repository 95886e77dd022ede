// Comments on the canvas: the workspace's threads, loaded over HTTP and kept current by the
// server's stateless `comment.*` events (the socket asks for them with `?comments=1`). Shows a
// badge count per block (open threads and their replies) and a side panel for the selected block
// (or the whole workspace when nothing is selected): read, reply, resolve/reopen, delete own.

import { api } from './api.js'
import { h, toast } from './dom.js'

const PAGE = 200

export class Comments {
  constructor ({ workspaceId, me, onChange = () => {} }) {
    this.workspaceId = workspaceId
    this.me = me
    this.onChange = onChange
    /** comment id → comment view */
    this.byId = new Map()
    /** Bumped on every change, so the page redraws the panel only when something changed. */
    this.version = 0
  }

  changed () {
    this.version++
    this.onChange()
  }

  /** Every live comment of the workspace, page by page (after a (re)connect: events missed). */
  async reload () {
    const all = new Map()
    let cursor = null
    do {
      const query = `limit=${PAGE}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '')
      const page = await api('GET', `/workspaces/${this.workspaceId}/comments?${query}`)
      for (const c of page.items) all.set(c.id, c)
      cursor = page.next_cursor
    } while (cursor)
    this.byId = all
    this.changed()
  }

  /** A stateless message from the socket; true when it was a comment event. */
  handle (msg) {
    if (!msg || typeof msg.type !== 'string' || !msg.type.startsWith('comment.') || !msg.comment) return false
    if (msg.type === 'comment.deleted') this.byId.delete(msg.comment.id)
    else this.byId.set(msg.comment.id, msg.comment)
    this.changed()
    return true
  }

  rootOf (c) { return c.parent_comment_id ? this.byId.get(c.parent_comment_id) : c }

  isOpen (c) {
    const root = this.rootOf(c)
    return !(root && root.resolved_at)
  }

  /** Open comments (unresolved threads with their replies) on a block: the badge number. */
  countFor (blockId) {
    let n = 0
    for (const c of this.byId.values()) {
      if (c.target_type === 'BLOCK' && c.target_id === blockId && this.isOpen(c)) n++
    }
    return n
  }

  /** Threads (root + replies, oldest first) anchored to `blockId`, or to the workspace. */
  threads (blockId) {
    const roots = [...this.byId.values()]
      .filter((c) => !c.parent_comment_id)
      .filter((c) => blockId ? c.target_type === 'BLOCK' && c.target_id === blockId : c.target_type === 'WORKSPACE')
      .sort((a, b) => a.created_at.localeCompare(b.created_at))
    return roots.map((root) => ({
      root,
      replies: [...this.byId.values()]
        .filter((c) => c.parent_comment_id === root.id)
        .sort((a, b) => a.created_at.localeCompare(b.created_at))
    }))
  }

  async post (content, { blockId = null, parentId = null } = {}) {
    const body = parentId
      ? { content, parent_comment_id: parentId }
      : blockId ? { content, target_type: 'BLOCK', target_id: blockId } : { content }
    const created = await api('POST', `/workspaces/${this.workspaceId}/comments`, body)
    this.byId.set(created.id, created)
    this.changed()
  }

  async act (id, action) {
    const base = `/workspaces/${this.workspaceId}/comments/${id}`
    if (action === 'delete') {
      await api('DELETE', base)
      this.byId.delete(id)
    } else {
      this.byId.set(id, await api('POST', `${base}/${action}`, {}))
    }
    this.changed()
  }
}

function when (iso) {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString()
}

/** The side panel: `render(blockId, blockName)` redraws it for the current selection. */
export function commentPanel (comments) {
  const heading = h('h2', { 'data-testid': 'comments-title' }, 'Comments')
  const list = h('div', { class: 'threads', 'data-testid': 'comment-threads' })
  const text = h('textarea', { rows: 3, placeholder: 'Write a comment…', 'aria-label': 'New comment', 'data-testid': 'comment-input' })
  let target = null
  let shown = null
  /** Unsent replies by thread, kept across redraws (a comment may arrive while one types). */
  const drafts = new Map()
  const form = h('form', {
    class: 'comment-form',
    onsubmit: async (event) => {
      event.preventDefault()
      const content = text.value.trim()
      if (!content) return
      try {
        await comments.post(content, { blockId: target })
        text.value = ''
      } catch (err) {
        toast(`Comment not sent: ${err.message}`, 'error')
      }
    }
  }, text, h('button', { type: 'submit', 'data-testid': 'comment-send' }, 'Comment'))
  const el = h('aside', { class: 'comments', 'aria-label': 'Comments', 'data-testid': 'comment-panel' }, heading, list, form)

  const act = (id, action) => comments.act(id, action).catch((err) => toast(err.message, 'error'))

  function commentEl (c, isRoot) {
    const actions = []
    if (isRoot) {
      actions.push(h('button', { type: 'button', class: 'link', onclick: () => act(c.id, c.resolved_at ? 'reopen' : 'resolve') }, c.resolved_at ? 'Reopen' : 'Resolve'))
    }
    if (c.author_id === comments.me.id) {
      actions.push(h('button', { type: 'button', class: 'link', onclick: () => act(c.id, 'delete') }, 'Delete'))
    }
    return h('div', { class: 'comment', 'data-testid': `comment-${c.id}` },
      h('div', { class: 'meta' }, c.author_id === comments.me.id ? 'You' : (c.author_name || `User ${c.author_id.slice(0, 8)}`), ' · ', when(c.created_at),
        c.edited_at ? ' · edited' : '', c.orphaned ? ' · block deleted' : ''),
      h('p', { class: 'body' }, c.content),
      h('div', { class: 'actions' }, actions))
  }

  function threadEl ({ root, replies }) {
    const reply = h('input', {
      type: 'text',
      placeholder: 'Reply…',
      'aria-label': 'Reply',
      'data-thread': root.id,
      value: drafts.get(root.id) || '',
      oninput: () => drafts.set(root.id, reply.value)
    })
    const replyForm = h('form', {
      class: 'reply-form',
      onsubmit: async (event) => {
        event.preventDefault()
        const content = reply.value.trim()
        if (!content) return
        try {
          drafts.delete(root.id)
          reply.value = ''
          await comments.post(content, { parentId: root.id })
        } catch (err) {
          toast(`Reply not sent: ${err.message}`, 'error')
        }
      }
    }, reply)
    return h('section', { class: root.resolved_at ? 'thread resolved' : 'thread' },
      commentEl(root, true), replies.map((r) => commentEl(r, false)), replyForm)
  }

  function render (blockId, blockName) {
    const key = `${blockId}|${blockName}|${comments.version}`
    if (key === shown) return
    shown = key
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.thread
      : null
    target = blockId
    heading.textContent = blockId ? `Comments on "${blockName}"` : 'Workspace comments'
    const threads = comments.threads(blockId)
    list.replaceChildren(...(threads.length
      ? threads.map(threadEl)
      : [h('p', { class: 'empty' }, 'No comments yet')]))
    if (focused) {
      const again = list.querySelector(`input[data-thread="${focused}"]`)
      if (again) again.focus()
    }
  }

  return { el, render }
}
