// Edit locks over the y-websocket connection: stateless messages (type 5, one JSON string).
// The server sends the full list on join and every change after; this keeps the live table,
// asks for locks (acquire → granted | denied) and renews the ones this page holds.

import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

export const MESSAGE_STATELESS = 5
const RENEW_EVERY_MS = 10_000
const ACQUIRE_TIMEOUT_MS = 8_000

export class LockClient {
  constructor (provider, { onChange = () => {}, onLost = () => {}, onOther = () => {} } = {}) {
    this.provider = provider
    this.onChange = onChange
    this.onLost = onLost
    /** Stateless messages that are not about locks (comment events) go here. */
    this.onOther = onOther
    /** resource_id → lock view (everyone's live locks) */
    this.locks = new Map()
    /** resource ids this page holds */
    this.held = new Set()
    /** request_id → { resolve, timer } */
    this.pending = new Map()
    this.seq = 0
    provider.messageHandlers[MESSAGE_STATELESS] = (_encoder, decoder) => {
      const payload = decoding.readVarString(decoder)
      let msg
      try { msg = JSON.parse(payload) } catch { return }
      this.handle(msg)
    }
    provider.on('status', ({ status }) => {
      if (status !== 'connected') this.reset()
    })
    this.timer = setInterval(() => this.renewAll(), RENEW_EVERY_MS)
  }

  destroy () {
    clearInterval(this.timer)
    this.reset()
  }

  send (msg) {
    const { provider } = this
    if (!provider.wsconnected || !provider.ws) return false
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, MESSAGE_STATELESS)
    encoding.writeVarString(e, JSON.stringify(msg))
    provider.ws.send(encoding.toUint8Array(e))
    return true
  }

  /** The lock on a block, if any. */
  get (resourceId) { return this.locks.get(resourceId) || null }

  /** A lock held by someone other than this page. */
  heldByOther (resourceId) {
    const lock = this.locks.get(resourceId)
    return lock && !this.held.has(resourceId) ? lock : null
  }

  /** Resolves to `{ ok: true, lock }` or `{ ok: false, reason, holder }`. */
  acquire (resourceId, resourceType = 'BLOCK') {
    if (this.held.has(resourceId)) return Promise.resolve({ ok: true, lock: this.locks.get(resourceId) })
    const requestId = `r${++this.seq}-${Date.now()}`
    return new Promise((resolve) => {
      const sent = this.send({ type: 'lock.acquire', resource_type: resourceType, resource_id: resourceId, request_id: requestId })
      if (!sent) { resolve({ ok: false, reason: 'offline', holder: null }); return }
      const timer = setTimeout(() => {
        this.pending.delete(requestId)
        resolve({ ok: false, reason: 'no answer from the server', holder: null })
      }, ACQUIRE_TIMEOUT_MS)
      this.pending.set(requestId, { resolve, timer, resourceId })
    })
  }

  release (resourceId, resourceType = 'BLOCK') {
    if (!this.held.delete(resourceId)) return
    const lock = this.locks.get(resourceId)
    if (lock && lock.id) this.locks.delete(resourceId)
    this.send({ type: 'lock.release', resource_type: resourceType, resource_id: resourceId })
    this.onChange()
  }

  renewAll () {
    for (const id of this.held) {
      const lock = this.locks.get(id)
      this.send({ type: 'lock.renew', resource_type: (lock && lock.resource_type) || 'BLOCK', resource_id: id })
    }
  }

  reset () {
    for (const { resolve, timer } of this.pending.values()) {
      clearTimeout(timer)
      resolve({ ok: false, reason: 'disconnected', holder: null })
    }
    this.pending.clear()
    const lost = [...this.held]
    this.held.clear()
    this.locks.clear()
    for (const id of lost) this.onLost(id, 'disconnected')
    this.onChange()
  }

  handle (msg) {
    switch (msg.type) {
      case 'lock.list':
        this.locks.clear()
        for (const lock of msg.locks || []) this.locks.set(lock.resource_id, lock)
        break
      case 'lock.granted': {
        const { lock } = msg
        this.locks.set(lock.resource_id, lock)
        const waiter = this.pending.get(msg.request_id)
        if (waiter) {
          clearTimeout(waiter.timer)
          this.pending.delete(msg.request_id)
          this.held.add(lock.resource_id)
          waiter.resolve({ ok: true, lock })
        } else if (!this.held.has(lock.resource_id)) {
          // A renewal answer, or a grant that arrived after we gave up: keep what we hold only.
          if (msg.request_id) this.send({ type: 'lock.release', resource_type: lock.resource_type, resource_id: lock.resource_id })
        }
        break
      }
      case 'lock.denied': {
        const waiter = this.pending.get(msg.request_id)
        if (waiter) {
          clearTimeout(waiter.timer)
          this.pending.delete(msg.request_id)
          if (msg.holder) this.locks.set(msg.holder.resource_id, msg.holder)
          waiter.resolve({ ok: false, reason: msg.reason, holder: msg.holder || null })
        } else if (this.held.has(msg.resource_id)) {
          // A renewal was refused: the lock is gone.
          this.held.delete(msg.resource_id)
          this.onLost(msg.resource_id, msg.reason)
        }
        break
      }
      case 'lock.acquired':
        this.locks.set(msg.lock.resource_id, msg.lock)
        break
      case 'lock.released': {
        const current = this.locks.get(msg.lock.resource_id)
        if (current && current.id === msg.lock.id) this.locks.delete(msg.lock.resource_id)
        if (this.held.has(msg.lock.resource_id) && msg.reason !== 'released') {
          this.held.delete(msg.lock.resource_id)
          this.onLost(msg.lock.resource_id, msg.reason)
        }
        break
      }
      default:
        this.onOther(msg)
        return
    }
    this.onChange()
  }
}
