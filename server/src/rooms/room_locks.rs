//! Edit locks inside a [`WorkspaceRoom`] (DESIGN §5).
//!
//! The room is the one place that decides for its workspace, so two racing acquires are ordered by
//! its queue and exactly one wins; each decision is written to `edit_locks` (which also arbitrates
//! against resource ids of other workspaces) before the requester or any peer hears of it.

use chrono::Utc;
use nox_persistence::error::PersistenceError;
use nox_persistence::locks::{self, EditLock};
use nox_sync_protocol::locks::{
    parse_command, LockCommand, LockEvent, LockMessageError, LockTarget, ReleaseReason,
    ResourceType,
};
use nox_sync_protocol::wire;
use uuid::Uuid;

use super::lock_table::{view, Refusal};
use super::peer::ConnId;
use super::room::{Target, WorkspaceRoom};

/// A lock to drop, and why.
pub struct LockRelease {
    pub kind: ResourceType,
    pub lock: EditLock,
    pub reason: ReleaseReason,
    pub by: Option<Uuid>,
}

impl WorkspaceRoom {
    /// A stateless frame: lock messages are ours; anything else is the application's business.
    pub(super) fn on_stateless(&mut self, conn: ConnId, payload: &str) {
        match parse_command(payload) {
            Ok(command) => {
                if let Some(peer) = self.peers.get_mut(&conn) {
                    // Speaking the lock protocol is asking for its events.
                    if !peer.info.wants_locks {
                        peer.info.wants_locks = true;
                        self.send_lock_list(conn);
                    }
                }
                self.lock_work.push((conn, command));
            }
            Err(LockMessageError::Invalid(message)) => {
                self.send_lock_event(
                    conn,
                    &LockEvent::Error {
                        request_id: None,
                        message,
                    },
                );
            }
            Err(LockMessageError::NotALockMessage) => {}
        }
    }

    pub(super) fn send_lock_list(&mut self, conn: ConnId) {
        let now = Utc::now();
        let locks = self
            .locks
            .live(now)
            .iter()
            .map(|(kind, lock)| view(*kind, lock, self.user_name(lock.locked_by)))
            .collect();
        self.send_lock_event(conn, &LockEvent::List { locks });
    }

    pub(super) fn release_locks_of(&mut self, conn: ConnId) {
        for (kind, lock) in self.locks.taken_by(conn) {
            self.lock_releases.push(LockRelease {
                kind,
                lock,
                reason: ReleaseReason::Disconnected,
                by: None,
            });
        }
    }

    /// Queues the release of expired locks and stores it (called from the tick).
    pub(super) async fn expire_locks(&mut self) {
        for (kind, lock) in self.locks.expired(Utc::now()) {
            self.lock_releases.push(LockRelease {
                kind,
                lock,
                reason: ReleaseReason::Expired,
                by: None,
            });
        }
        self.process_locks().await;
    }

    /// Decides, stores and announces this batch's lock work.
    pub(super) async fn process_locks(&mut self) {
        for release in std::mem::take(&mut self.lock_releases) {
            self.release(release).await;
        }
        for (conn, command) in std::mem::take(&mut self.lock_work) {
            self.run_lock_command(conn, command).await;
        }
    }

    async fn run_lock_command(&mut self, conn: ConnId, command: LockCommand) {
        let Some(peer) = self.peers.get(&conn) else {
            return; // it left in this batch; its locks are being released
        };
        let (user, can_write, can_override) = (
            peer.info.user_id,
            peer.info.can_write,
            peer.info.can_override_locks,
        );
        let target = command.target().clone();
        if !can_write {
            return self.deny(conn, &target, "read-only: locks need write access", None);
        }
        match command {
            LockCommand::Acquire(_) => self.acquire(conn, user, &target, false).await,
            LockCommand::Renew(_) => self.acquire(conn, user, &target, true).await,
            LockCommand::Release(_) => self.release_own(conn, user, &target).await,
            LockCommand::Break(_) if can_override => self.break_lock(conn, user, &target).await,
            LockCommand::Break(_) => {
                self.deny(conn, &target, "breaking locks needs 'locks:override'", None)
            }
        }
    }

    async fn acquire(&mut self, conn: ConnId, user: Uuid, target: &LockTarget, renew: bool) {
        let (kind, id, now) = (target.resource_type, target.resource_id, Utc::now());
        if !self.resource_exists(kind, id) {
            return self.deny(conn, target, "no such resource in this workspace", None);
        }
        let holds = self
            .locks
            .holder(kind, id, now)
            .is_some_and(|l| l.locked_by == user);
        if renew && !holds {
            return self.deny(conn, target, "not held: acquire it first", None);
        }
        let proposal =
            match self
                .locks
                .propose(self.workspace_id, kind, id, user, target.ttl_ms(), now)
            {
                Ok(lock) => lock,
                Err(Refusal::HeldBy(holder)) => {
                    let holder = view(kind, &holder, self.user_name(holder.locked_by));
                    return self.deny(conn, target, "locked by another user", Some(holder));
                }
            };
        match locks::acquire(self.ctx.db.pool(), &self.lease, &proposal).await {
            Ok(Some(stored)) => {
                self.locks.insert(kind, stored.clone(), Some(conn));
                let lock = view(kind, &stored, self.user_name(user));
                self.send_lock_event(
                    conn,
                    &LockEvent::Granted {
                        request_id: target.request_id.clone(),
                        lock: lock.clone(),
                    },
                );
                self.broadcast_lock_event(&LockEvent::Acquired { lock });
            }
            Ok(None) => self.deny(conn, target, "resource is locked elsewhere", None),
            Err(PersistenceError::Fenced { .. }) => {
                self.deny(conn, target, "the workspace moved to another node", None);
                self.lost_lease();
            }
            Err(err) => {
                tracing::warn!(workspace_id = %self.workspace_id, error = %err, "storing a lock failed");
                self.deny(conn, target, "storage unavailable: retry", None)
            }
        }
    }

    async fn release_own(&mut self, conn: ConnId, user: Uuid, target: &LockTarget) {
        let (kind, id) = (target.resource_type, target.resource_id);
        match self.locks.holder(kind, id, Utc::now()).cloned() {
            Some(lock) if lock.locked_by == user => {
                self.release(LockRelease {
                    kind,
                    lock,
                    reason: ReleaseReason::Released,
                    by: Some(user),
                })
                .await;
            }
            _ => self.deny(conn, target, "not held by you", None),
        }
    }

    async fn break_lock(&mut self, conn: ConnId, user: Uuid, target: &LockTarget) {
        let (kind, id) = (target.resource_type, target.resource_id);
        match self.locks.holder(kind, id, Utc::now()).cloned() {
            Some(lock) => {
                self.release(LockRelease {
                    kind,
                    lock,
                    reason: ReleaseReason::Broken,
                    by: Some(user),
                })
                .await;
            }
            None => self.deny(conn, target, "not locked", None),
        }
    }

    /// Deletes the row, forgets the lock and tells every subscriber. A failed delete keeps the lock
    /// in memory until it expires (the row would otherwise outlive it and block a later acquire).
    pub(super) async fn release(&mut self, release: LockRelease) -> bool {
        let LockRelease {
            kind,
            lock,
            reason,
            by,
        } = release;
        if let Err(err) = locks::release(self.ctx.db.pool(), self.workspace_id, &[lock.id]).await {
            tracing::warn!(workspace_id = %self.workspace_id, error = %err, "releasing a lock failed");
            return false;
        }
        self.locks.remove_lock(kind, &lock);
        let lock = view(kind, &lock, self.user_name(lock.locked_by));
        self.broadcast_lock_event(&LockEvent::Released { lock, reason, by });
        true
    }

    fn deny(
        &mut self,
        conn: ConnId,
        target: &LockTarget,
        reason: &str,
        holder: Option<nox_sync_protocol::locks::LockView>,
    ) {
        let event = LockEvent::Denied {
            request_id: target.request_id.clone(),
            resource_type: target.resource_type,
            resource_id: target.resource_id,
            reason: reason.to_string(),
            holder,
        };
        self.send_lock_event(conn, &event);
    }

    pub(super) fn resource_exists(&self, kind: ResourceType, id: Uuid) -> bool {
        use yrs::{Map, ReadTxn, Transact};
        let txn = self.awareness.doc().transact();
        let root = match kind {
            ResourceType::Block => nox_sync_protocol::canvas::BLOCKS,
            ResourceType::Relation => nox_sync_protocol::canvas::RELATIONS,
        };
        txn.get_map(root)
            .is_some_and(|map| map.contains_key(&txn, &id.to_string()))
    }

    /// A display name for lock badges: from a connected peer of that user.
    pub(super) fn user_name(&self, user: Uuid) -> Option<String> {
        self.peers
            .values()
            .find(|p| p.info.user_id == user)
            .and_then(|p| p.info.user_name.clone())
    }

    fn send_lock_event(&mut self, conn: ConnId, event: &LockEvent) {
        self.queue(Target::One(conn), wire::encode_stateless(&event.to_json()));
    }

    fn broadcast_lock_event(&mut self, event: &LockEvent) {
        self.queue(
            Target::LockSubscribers,
            wire::encode_stateless(&event.to_json()),
        );
    }
}
