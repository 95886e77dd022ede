-- Tables used by the CRDT (Yjs) sync engine.

-- workspace_update_log: append-only log of accepted Yjs v1 updates per workspace;
-- entries with seq <= workspace_snapshots.covers_seq are deleted by compaction.
CREATE TABLE workspace_update_log (
    workspace_id UUID NOT NULL
                 CONSTRAINT workspace_update_log_workspace_id_fkey REFERENCES workspaces (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    update_bytes BYTEA NOT NULL,
    user_id      UUID
                 CONSTRAINT workspace_update_log_user_id_fkey REFERENCES users (id) ON DELETE SET NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT workspace_update_log_pkey PRIMARY KEY (workspace_id, seq)
);

-- workspace_snapshots: compacted full document state per workspace
CREATE TABLE workspace_snapshots (
    workspace_id UUID PRIMARY KEY
                 CONSTRAINT workspace_snapshots_workspace_id_fkey REFERENCES workspaces (id) ON DELETE CASCADE,
    state        BYTEA NOT NULL,         -- full doc state, Yjs v1 update
    state_vector BYTEA NOT NULL,
    covers_seq   BIGINT NOT NULL,        -- highest log seq folded into state
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- workspace_projection_status: result of the last projection of the doc into core_* tables
CREATE TABLE workspace_projection_status (
    workspace_id   UUID PRIMARY KEY
                   CONSTRAINT workspace_projection_status_workspace_id_fkey REFERENCES workspaces (id) ON DELETE CASCADE,
    projected_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    conflict_count INTEGER NOT NULL DEFAULT 0,
    conflicts      JSONB NOT NULL DEFAULT '[]'
);

-- mail_outbox: outgoing mail (verification, invitations, ...) for delivery / inspection
CREATE TABLE mail_outbox (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    to_email   VARCHAR(255) NOT NULL,
    kind       VARCHAR(50) NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX mail_outbox_to_email_created_at_idx ON mail_outbox (to_email, created_at);

-- edit_locks: index for the expired-lock sweeper
-- (user_sessions.refresh_token is already indexed by its UNIQUE constraint)
CREATE INDEX edit_locks_expires_at_idx ON edit_locks (expires_at);
