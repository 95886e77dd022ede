//! Whether a document's full state rebuilds the document it was taken from.
//!
//! Compaction replaces a prefix of the update log with one full state. That is only sound when the
//! full state, loaded into a fresh document, reaches the same clocks as the live document. yrs can
//! integrate structs into a live document that its own full-state encoding cannot rebuild (a
//! struct that refers to a later clock of its own client, found by fuzzing: the fresh document
//! keeps it pending forever). Trimming the log then would lose acknowledged edits on the next
//! load, so the compactor checks with [`rebuilds`] first and keeps the log when it does not.

use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Transact, Update};

/// True when `full_state` (a v1 update of the whole document), applied to a fresh document,
/// reaches exactly the clocks of `live` (the live document's state vector). A full state that does
/// not decode or apply rebuilds nothing.
pub fn rebuilds(full_state: &[u8], live: &StateVector) -> bool {
    let Ok(update) = Update::decode_v1(full_state) else {
        return false;
    };
    let fresh = Doc::new();
    let mut txn = fresh.transact_mut();
    if txn.apply_update(update).is_err() {
        return false;
    }
    same_clocks(&txn.state_vector(), live)
}

/// State vector equality by meaning: an entry with clock 0 (a client seen only through pending
/// structs) equals no entry at all.
pub fn same_clocks(a: &StateVector, b: &StateVector) -> bool {
    a.iter()
        .chain(b.iter())
        .all(|(client, _)| a.get(client) == b.get(client))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas;
    use serde_json::json;

    #[test]
    fn an_ordinary_document_rebuilds_from_its_full_state() {
        let doc = canvas::new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let fields = json!({"type": "NODE", "name": "a"});
            canvas::put_block(
                &mut txn,
                "00000000-0000-0000-0000-000000000001",
                fields.as_object().unwrap(),
            )
            .unwrap();
        }
        let txn = doc.transact();
        let full = txn.encode_state_as_update_v1(&StateVector::default());
        assert!(rebuilds(&full, &txn.state_vector()));
        // A state that is behind the live clocks does not.
        let empty = Doc::new()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert!(!rebuilds(&empty, &txn.state_vector()));
        assert!(!rebuilds(b"\xff\xff garbage", &txn.state_vector()));
    }
}
