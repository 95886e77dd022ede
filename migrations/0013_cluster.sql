-- Several nodes on one PostgreSQL (issue 17, docs/design.md §7).
--
-- `nodes`: every running nox-sync process, with the address other nodes reach it at and a
-- heartbeat. A node whose heartbeat is older than the lease TTL is dead to the cluster.
--
-- `workspace_leases`: which node owns a workspace's room. A lease is valid while its node's
-- heartbeat is fresh; a new owner bumps `epoch`. Every log append, compaction and lock acquire
-- of a room carries (node_id, epoch) and locks this row FOR SHARE in the same statement or
-- transaction, so a write of a stale owner is refused by the database, and a takeover (which
-- updates the row) waits for the writes in flight. Rows are never deleted: the epoch of a
-- workspace only grows (a released lease has node_id NULL).

CREATE TABLE nodes (
    id           UUID PRIMARY KEY,
    addr         TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE TABLE workspace_leases (
    workspace_id UUID PRIMARY KEY,
    node_id      UUID,
    epoch        BIGINT NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX workspace_leases_node_id_idx ON workspace_leases (node_id) WHERE node_id IS NOT NULL;

-- Cluster bus messages too large for a NOTIFY payload (8000 bytes): the notification carries
-- `stored:<id>` and receivers read the row. Rows older than a few minutes are swept on insert.
CREATE TABLE cluster_messages (
    id         BIGSERIAL PRIMARY KEY,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Secrets every node of a cluster must share, generated once by the first node (today: the token
-- signing secret, when NOX_JWT_SECRET is not set and the database is external).
CREATE TABLE cluster_secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Open live connections per organization on each node, reported with every heartbeat, so the
-- plan's concurrent-connections quota counts the whole cluster. A connection counts on the node
-- its client is connected to (a relayed one not again on the owner).
CREATE TABLE node_connections (
    node_id     UUID NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    org_id      UUID NOT NULL,
    connections INTEGER NOT NULL,
    PRIMARY KEY (node_id, org_id)
);
