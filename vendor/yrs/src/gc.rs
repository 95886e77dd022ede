use crate::block::{Block, ClientID};
use crate::{IdSet, Store, TransactionMut, ID};
use std::collections::HashMap;

#[derive(Default)]
pub(crate) struct GCCollector {
    marked: HashMap<ClientID, Vec<u32>>,
}

impl GCCollector {
    /// Garbage collect all blocks deleted within current transaction scope.
    pub fn collect(txn: &mut TransactionMut) {
        let mut gc = Self::default();
        gc.mark_in_scope(&mut txn.store, None, &txn.delete_set);
        gc.collect_marked(txn);
    }

    /// nox-sync patch: garbage collect the blocks of `delete_set` (deleted by an earlier
    /// transaction that deferred its collection), as that transaction's commit would have.
    pub fn collect_deferred(txn: &mut TransactionMut, delete_set: &IdSet) {
        let mut gc = Self::default();
        gc.mark_in_scope(&mut txn.store, None, delete_set);
        gc.collect_marked(txn);
    }

    /// Garbage collect all deleted blocks from current transaction's document store.
    pub fn collect_all(txn: &mut TransactionMut, delete_set: Option<&IdSet>) {
        let mut gc = Self::default();
        match delete_set {
            None => gc.mark_all(txn),
            Some(ds) => gc.mark_in_scope(&mut txn.store, Some(&mut txn.merge_blocks), ds),
        }
        gc.collect_marked(txn);
    }

    /// Mark deleted items based on a provided delete set.
    fn mark_in_scope(
        &mut self,
        store: &mut Store,
        mut merge_blocks: Option<&mut Vec<ID>>,
        delete_set: &IdSet,
    ) {
        for (client, range) in delete_set.iter() {
            if let Some(blocks) = store.blocks.get_client_mut(client) {
                for delete_item in range.iter().rev() {
                    let mut start = delete_item.start;
                    if let Some(mut i) = blocks.find_index(start) {
                        while i < blocks.len() {
                            let mut block = unsafe { blocks.get(i).unwrap_unchecked() };
                            let block = block.as_mut();
                            let len = block.len();
                            start += len;
                            if start > delete_item.end {
                                break;
                            } else {
                                if let Block::Item(item) = block {
                                    if !item.info.is_keep() {
                                        item.gc(self, false);
                                    }
                                    if let Some(merge_blocks) = merge_blocks.as_deref_mut() {
                                        merge_blocks.push(item.id);
                                    }
                                }
                                i += 1;
                            }
                        }
                    }
                }
            }
        }
    }

    fn mark_all(&mut self, txn: &mut TransactionMut) {
        for (_, client_blocks) in txn.store.blocks.iter_mut() {
            for mut block in client_blocks.iter() {
                if let Block::Item(item) = block.as_mut() {
                    if item.is_deleted() {
                        if !item.info.is_keep() {
                            item.gc(self, false);
                        }
                        txn.merge_blocks.push(item.id);
                    }
                }
            }
        }
    }

    /// Marks item with a given [ID] as a candidate for being GCed.
    pub(crate) fn mark(&mut self, id: &ID) {
        let client = self.marked.entry(id.client).or_default();
        client.push(id.clock);
    }

    /// Garbage collects all items marked for GC.
    fn collect_marked(self, txn: &mut TransactionMut) {
        for (client_id, mut clocks) in self.marked.into_iter() {
            let client = txn.store.blocks.get_client_blocks_mut(client_id);
            // nox-sync patch: the marked clocks in ascending order, each found by looking a few
            // blocks past the previous one before falling back to a binary search (upstream: a
            // binary search over the client's whole block list per marked struct, a cache miss
            // per step). Replacing a block by a GC block keeps every index, so the walk is valid.
            clocks.sort_unstable();
            let mut next = 0usize;
            for clock in clocks {
                let near = (next..client.len().min(next + 8)).find(|&i| {
                    let (start, end) = unsafe { client.get(i).unwrap_unchecked() }.as_ref().clock_range();
                    start <= clock && clock <= end
                });
                let found = near.or_else(|| client.find_index(clock));
                if let Some(index) = found {
                    next = index;
                    let block = unsafe { client.get(index).unwrap_unchecked() }.as_mut();
                    if let Block::Item(item) = block {
                        if item.is_deleted() {
                            let gc = Block::GC(item.block_range());
                            *block = gc;
                        }
                    }
                }
            }
        }
    }
}
