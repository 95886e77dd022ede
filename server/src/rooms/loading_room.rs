//! A room whose document is still being built: it already answers joiners with the stored state.
//!
//! Decoding and applying a large stored snapshot takes most of a cold load (≈95 ms of the 155 ms
//! the server spent on a 10k-block canvas, `bench/README.md`). When storage holds exactly one
//! snapshot and no log after it, those bytes *are* the document, so a joiner's SyncStep1 can be
//! answered with them at once while the document is built beside it. Everything else a client or
//! the HTTP API sends waits, in order, for the built room: nothing is applied to or read from a
//! document that does not exist yet, and the durability contract is untouched (the snapshot is
//! stored state).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use nox_persistence::cluster::Lease;
use nox_sync_protocol::wire::ClientMessage;
use tokio::sync::{mpsc, oneshot};

use super::load::{self, Fetched, LoadError};
use super::peer::{CloseReason, ConnId, PeerControl};
use super::room::{self, RoomCommand, WorkspaceRoom};
use super::RoomContext;

/// A connection that joined before the document was built.
struct EarlyPeer {
    outbound: mpsc::Sender<Bytes>,
    control: Arc<PeerControl>,
}

/// Serves `full_state` (a SyncStep2 frame of the stored snapshot) while `fetched` is built, then
/// hands every held-back command to the built room and runs it.
pub(super) async fn run(
    lease: Lease,
    ctx: RoomContext,
    fetched: Fetched,
    full_state: Bytes,
    mut commands: mpsc::Receiver<RoomCommand>,
    on_exit: impl FnOnce(),
) {
    let workspace_id = lease.workspace_id;
    let building = load::build(workspace_id, fetched);
    tokio::pin!(building);
    let mut early_peers: HashMap<ConnId, EarlyPeer> = HashMap::new();
    let mut held_back = Vec::new();
    let built = loop {
        tokio::select! {
            built = &mut building => break built,
            command = commands.recv() => match command {
                Some(command) => {
                    if let Some(command) = answer_early(command, &full_state, &mut early_peers) {
                        held_back.push(command);
                    }
                }
                // Every handle is gone (cannot happen while registered): nothing to serve.
                None => break Err(LoadError::Task("room queue closed while loading".into())),
            },
        }
    };
    match built {
        Ok(loaded) => {
            let mut room = WorkspaceRoom::new(lease, ctx, loaded);
            room.seed_full_state(full_state);
            room.run(held_back, commands, on_exit).await;
        }
        Err(err) => {
            tracing::error!(%workspace_id, error = %err, "workspace failed to load after serving its snapshot");
            for peer in early_peers.values() {
                peer.control.close(CloseReason::INTERNAL);
            }
            ctx.metrics.rooms_loaded.dec();
            on_exit();
            ctx.cluster.release(&lease).await;
            held_back.into_iter().for_each(room::refuse);
            room::refuse_remaining(commands).await;
        }
    }
}

/// Does what can be done before the document exists; returns what must wait for it.
fn answer_early(
    command: RoomCommand,
    full_state: &Bytes,
    early_peers: &mut HashMap<ConnId, EarlyPeer>,
) -> Option<RoomCommand> {
    match command {
        RoomCommand::Join {
            info,
            outbound,
            control,
            reply,
        } => {
            // The session may start pumping now; the built room greets it (SyncStep1, awareness,
            // locks) when it takes this join over.
            let _ = reply.send(Ok(()));
            early_peers.insert(
                info.conn,
                EarlyPeer {
                    outbound: outbound.clone(),
                    control: control.clone(),
                },
            );
            let (reply, _) = oneshot::channel();
            Some(RoomCommand::Join {
                info,
                outbound,
                control,
                reply,
            })
        }
        RoomCommand::Messages { conn, messages } => {
            let Some(peer) = early_peers.get(&conn) else {
                return Some(RoomCommand::Messages { conn, messages });
            };
            let (step1s, rest): (Vec<_>, Vec<_>) = messages
                .into_iter()
                .partition(|m| matches!(m, ClientMessage::SyncStep1(_)));
            // The whole stored state answers any state vector: a client skips what it has.
            for _ in step1s {
                if peer.outbound.try_send(full_state.clone()).is_err() {
                    peer.control.close(CloseReason::SLOW_CONSUMER);
                }
            }
            (!rest.is_empty()).then_some(RoomCommand::Messages {
                conn,
                messages: rest,
            })
        }
        RoomCommand::Leave { conn } => {
            early_peers.remove(&conn);
            Some(RoomCommand::Leave { conn })
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::peer::PeerInfo;
    use uuid::Uuid;
    use yrs::StateVector;

    fn join(
        conn: ConnId,
    ) -> (
        RoomCommand,
        mpsc::Receiver<Bytes>,
        oneshot::Receiver<Result<(), room::RoomClosed>>,
    ) {
        let (outbound, frames) = mpsc::channel(4);
        let (reply, joined) = oneshot::channel();
        let info = PeerInfo {
            conn,
            user_id: Uuid::new_v4(),
            user_name: None,
            can_write: true,
            can_override_locks: false,
            wants_acks: false,
            wants_locks: false,
            wants_comments: false,
            wants_chat: false,
        };
        let command = RoomCommand::Join {
            info,
            outbound,
            control: Arc::default(),
            reply,
        };
        (command, frames, joined)
    }

    #[test]
    fn joins_are_accepted_at_once_and_handed_to_the_built_room() {
        let mut early = HashMap::new();
        let (command, _frames, mut joined) = join(7);
        let held = answer_early(command, &Bytes::from_static(b"state"), &mut early);
        assert!(
            matches!(joined.try_recv(), Ok(Ok(()))),
            "the session may start at once"
        );
        assert!(matches!(held, Some(RoomCommand::Join { info, .. }) if info.conn == 7));
    }

    #[test]
    fn sync_step1_is_answered_with_the_stored_state_and_the_rest_waits() {
        let mut early = HashMap::new();
        let state = Bytes::from_static(b"stored state frame");
        let (command, mut frames, _joined) = join(1);
        answer_early(command, &state, &mut early);
        let messages = vec![
            ClientMessage::SyncStep1(StateVector::default()),
            ClientMessage::Update(vec![0, 0]),
        ];
        let held = answer_early(
            RoomCommand::Messages { conn: 1, messages },
            &state,
            &mut early,
        );
        assert_eq!(frames.try_recv().ok(), Some(state.clone()));
        assert!(frames.try_recv().is_err(), "one answer per SyncStep1");
        match held {
            Some(RoomCommand::Messages { conn: 1, messages }) => {
                assert!(
                    matches!(messages.as_slice(), [ClientMessage::Update(u)] if u == &vec![0, 0])
                );
            }
            _ => panic!("the update must wait for the built room"),
        }
        let only_step1 = vec![ClientMessage::SyncStep1(StateVector::default())];
        let held = answer_early(
            RoomCommand::Messages {
                conn: 1,
                messages: only_step1,
            },
            &state,
            &mut early,
        );
        assert!(held.is_none(), "nothing left to hold back");
    }

    #[test]
    fn a_full_queue_closes_the_early_peer_as_a_slow_consumer() {
        let mut early = HashMap::new();
        let state = Bytes::from_static(b"s");
        let (command, _frames, _joined) = join(3);
        let control = match &command {
            RoomCommand::Join { control, .. } => control.clone(),
            _ => unreachable!(),
        };
        answer_early(command, &state, &mut early);
        let step1s = (0..5)
            .map(|_| ClientMessage::SyncStep1(StateVector::default()))
            .collect();
        answer_early(
            RoomCommand::Messages {
                conn: 3,
                messages: step1s,
            },
            &state,
            &mut early,
        );
        assert_eq!(control.reason(), Some(&CloseReason::SLOW_CONSUMER));
    }
}
