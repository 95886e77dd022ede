-- Version history (issue 14): core_snapshots holds full encoded states of a workspace document.
--
-- The seed table is per project with a JSONB dump; a version belongs to one workspace (one Yjs
-- document) and its content is the document's full state as a Yjs v1 update (BYTEA), which restores
-- exactly and is ~10x smaller than the canvas as JSON. `full_state_dump` keeps a small JSON summary
-- (encoding and counts) so the seed's NOT NULL column still says what the row holds.
-- Automatic versions have no author: created_by_id becomes nullable.

ALTER TABLE core_snapshots
    ADD COLUMN workspace_id   UUID
                              CONSTRAINT core_snapshots_workspace_id_fkey
                              REFERENCES workspaces (id) ON DELETE CASCADE,
    ADD COLUMN kind           VARCHAR(20) NOT NULL DEFAULT 'named'
                              CONSTRAINT core_snapshots_kind_check
                              CHECK (kind IN ('named', 'auto', 'before_restore')),
    ADD COLUMN state          BYTEA,
    ADD COLUMN state_vector   BYTEA,
    ADD COLUMN block_count    INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN relation_count INTEGER NOT NULL DEFAULT 0;

ALTER TABLE core_snapshots ALTER COLUMN created_by_id DROP NOT NULL;

-- Listing (newest first, keyset pagination) and retention both walk one workspace's versions by time.
CREATE INDEX core_snapshots_workspace_id_created_at_id_idx
    ON core_snapshots (workspace_id, created_at DESC, id DESC);
