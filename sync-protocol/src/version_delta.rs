//! Versions stored as the changes since a full version (issue 14, docs/design.md §19).
//!
//! A version the server takes itself (automatic, or the state before a restore) usually differs
//! from the workspace's newest full version by a few edits. It is then stored as the document's
//! update against that version's state vector: the base's state and these changes together make
//! the whole state (`restore::StoredVersion::parse_with_base`). That holds only when the base is
//! an earlier state of the same document, which [`changes_since`] checks with the state vectors.

use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector};

/// Changes are stored only when they weigh at most this fraction of the base (1/2): past it, the
/// version is stored whole and becomes the next base, so no version costs more than a full one
/// and reading one reads at most 1.5 states.
const MAX_CHANGES_PER_BASE: i64 = 2;

/// A full version a new one may be stored against.
#[derive(Debug, Clone, Copy)]
pub struct Base<'a> {
    /// Its state vector, v1 encoded (as stored).
    pub state_vector: &'a [u8],
    /// Bytes of its state.
    pub size_bytes: i64,
}

/// Whether every clock `earlier` has seen, `later` has seen too (`earlier` is then a past state
/// of the same history as `later`, or at least nothing it holds is missing from `later`).
pub fn covers(later: &StateVector, earlier: &StateVector) -> bool {
    earlier
        .iter()
        .all(|(client, clock)| later.get(client) >= *clock)
}

/// The document's changes since `base`, as an update against its state vector; `None` when the
/// version should be stored whole: the base is not an earlier state of this document, its state
/// vector does not decode, or the changes weigh more than half of it.
pub fn changes_since<T: ReadTxn>(txn: &T, base: Base<'_>) -> Option<Vec<u8>> {
    let base_vector = base.vector_within(&txn.state_vector())?;
    base.worth_storing(txn.encode_state_as_update_v1(&base_vector))
}

/// Like [`changes_since`], from a full state already encoded (`state`, with its state vector):
/// for versions stored away from the document.
pub fn changes_since_state(state: &[u8], state_vector: &[u8], base: Base<'_>) -> Option<Vec<u8>> {
    base.vector_within(&StateVector::decode_v1(state_vector).ok()?)?;
    base.worth_storing(yrs::diff_updates_v1(state, base.state_vector).ok()?)
}

/// The full state a base's state and the changes since it make together: a version stored as
/// changes, rewritten whole (when its base is deleted).
pub fn whole_state(base: &[u8], changes: &[u8]) -> Result<Vec<u8>, yrs::encoding::read::Error> {
    yrs::merge_updates_v1([base, changes])
}

impl Base<'_> {
    /// The base's state vector, when `current` covers it (the base is then an earlier state of
    /// that document) and it decodes.
    fn vector_within(&self, current: &StateVector) -> Option<StateVector> {
        let vector = StateVector::decode_v1(self.state_vector).ok()?;
        covers(current, &vector).then_some(vector)
    }

    /// `changes`, when they weigh at most half of the base.
    fn worth_storing(&self, changes: Vec<u8>) -> Option<Vec<u8>> {
        let len = i64::try_from(changes.len()).ok()?;
        (len.saturating_mul(MAX_CHANGES_PER_BASE) <= self.size_bytes).then_some(changes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, read_canvas, remove_block};
    use serde_json::json;
    use yrs::updates::encoder::Encode;
    use yrs::{Doc, Transact, Update};

    fn write_blocks(doc: &Doc, from: usize, to: usize, label: &str) {
        let mut txn = doc.transact_mut();
        for i in from..to {
            let f = json!({"type": "service", "name": format!("{label} {i}"), "visual": {"x": i}});
            put_block(&mut txn, &format!("b{i}"), f.as_object().unwrap()).unwrap();
        }
    }

    fn full(doc: &Doc) -> (Vec<u8>, Vec<u8>) {
        let txn = doc.transact();
        (
            txn.encode_state_as_update_v1(&StateVector::default()),
            txn.state_vector().encode_v1(),
        )
    }

    /// The base's state and the changes applied to a new document read the document's canvas.
    fn rebuilt(base: &[u8], changes: &[u8]) -> Doc {
        let doc = new_canvas_doc();
        for update in [base, changes] {
            let update = Update::decode_v1(update).unwrap();
            doc.transact_mut().apply_update(update).unwrap();
        }
        doc
    }

    #[test]
    fn a_few_edits_are_stored_as_changes_that_rebuild_the_state() {
        let doc = new_canvas_doc();
        write_blocks(&doc, 0, 100, "Block");
        let (base_state, base_vector) = full(&doc);
        write_blocks(&doc, 0, 3, "Renamed");
        remove_block(&mut doc.transact_mut(), "b50");
        let base = Base {
            state_vector: &base_vector,
            size_bytes: base_state.len() as i64,
        };
        let changes = changes_since(&doc.transact(), base).expect("worth a delta");
        assert!(changes.len() * 10 < base_state.len(), "{}", changes.len());
        let expected = read_canvas(&doc.transact());
        assert_eq!(
            read_canvas(&rebuilt(&base_state, &changes).transact()),
            expected
        );

        let (state, vector) = full(&doc);
        let away = changes_since_state(&state, &vector, base).expect("worth a delta");
        assert_eq!(
            read_canvas(&rebuilt(&base_state, &away).transact()),
            expected
        );

        // Rewritten whole, it reads the same, through the stored-update reader too.
        let whole = whole_state(&base_state, &changes).unwrap();
        let parsed = crate::restore::StoredVersion::parse(whole.clone()).unwrap();
        assert_eq!(parsed.canvas(), expected);
        let empty = new_canvas_doc()
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        assert_eq!(read_canvas(&rebuilt(&whole, &empty).transact()), expected);
    }

    #[test]
    fn large_changes_and_foreign_bases_are_stored_whole() {
        let doc = new_canvas_doc();
        write_blocks(&doc, 0, 10, "Block");
        let (base_state, base_vector) = full(&doc);
        let base = Base {
            state_vector: &base_vector,
            size_bytes: base_state.len() as i64,
        };
        write_blocks(&doc, 10, 40, "More");
        assert!(
            changes_since(&doc.transact(), base).is_none(),
            "more than half"
        );
        let (state, vector) = full(&doc);
        assert!(changes_since_state(&state, &vector, base).is_none());

        // A base that saw clocks this document has not (another document, or a newer state).
        let other = new_canvas_doc();
        write_blocks(&other, 0, 1, "Other");
        assert!(changes_since(&other.transact(), base).is_none(), "foreign");
        let (state, vector) = full(&other);
        assert!(changes_since_state(&state, &vector, base).is_none());
        let garbage = Base {
            state_vector: &[0xff, 0xff],
            size_bytes: 1 << 20,
        };
        assert!(changes_since(&doc.transact(), garbage).is_none());
    }

    #[test]
    fn covers_compares_every_client() {
        let (one, two) = (yrs::block::ClientID::new(1), yrs::block::ClientID::new(2));
        let mut earlier = StateVector::default();
        earlier.set_max(one, 5);
        earlier.set_max(two, 3);
        let mut later = earlier.clone();
        assert!(covers(&later, &earlier));
        later.set_max(one, 9);
        assert!(covers(&later, &earlier));
        assert!(!covers(&earlier, &later));
        let mut missing_client = StateVector::default();
        missing_client.set_max(one, 9);
        assert!(!covers(&missing_client, &earlier));
    }
}
