-- Versions stored as the changes since an earlier full version (issue 14).
--
-- A full version of the 10k-block + 10k-relation canvas is a 5 MB state (~1.9 MB after TOAST
-- compression). Versions the server takes itself (automatic ones, and the state before a restore)
-- usually differ from the newest full version by a few edits, so they are stored as a Yjs update
-- encoded against that version's state vector: kilobytes, written in a few milliseconds instead of
-- tens. Reading one is reading its base too (docs/design.md §19).
--
-- The base is always a full version of the same workspace (one level, never a chain): the insert
-- checks it. The foreign key keeps a base while a version still needs it; retention skips such
-- bases (persistence/src/versions.rs `prune`).

ALTER TABLE core_snapshots
    ADD COLUMN base_version_id UUID
        CONSTRAINT core_snapshots_base_version_id_fkey REFERENCES core_snapshots (id),
    ADD CONSTRAINT core_snapshots_base_version_id_check CHECK (base_version_id <> id);

-- Retention asks "does a kept version need this one?" for each candidate.
CREATE INDEX core_snapshots_base_version_id_idx
    ON core_snapshots (base_version_id) WHERE base_version_id IS NOT NULL;
