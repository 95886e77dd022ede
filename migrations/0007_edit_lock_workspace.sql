-- Edit locks belong to a workspace. The seed keys a lock by (resource_type, resource_id) only, but
-- resource ids are chosen by clients: without the workspace a lock row could neither be listed per
-- workspace nor kept from colliding with (or revealing) a lock of another tenant. Nullable so rows
-- written by other tools stay valid; Nox Sync always sets it.
ALTER TABLE edit_locks
    ADD COLUMN workspace_id UUID REFERENCES workspaces (id) ON DELETE CASCADE,
    ADD COLUMN acquired_at TIMESTAMPTZ NOT NULL DEFAULT NOW();

CREATE INDEX edit_locks_workspace_id_idx ON edit_locks (workspace_id);
