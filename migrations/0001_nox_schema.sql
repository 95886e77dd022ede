-- Nox Sync: base schema, generated from the "NOX DATABASE" DBML (32 tables).
-- gen_random_uuid() is built into PostgreSQL 13+, no extension needed.

-- ==========================================
-- 1. IAM & SECURITY
-- ==========================================

-- users: accounts; email is unique (case-insensitive) among live rows only
CREATE TABLE users (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email             VARCHAR(255) NOT NULL,
    is_email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    full_name         VARCHAR(255),
    avatar_url        TEXT,
    status            VARCHAR(50) NOT NULL DEFAULT 'PENDING_VERIFICATION',
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at        TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_email_live_key ON users (LOWER(email)) WHERE deleted_at IS NULL;
CREATE INDEX users_status_idx ON users (status);

-- user_security: 1:1 with users (user_id is both PK and FK)
CREATE TABLE user_security (
    user_id               UUID PRIMARY KEY
                          CONSTRAINT user_security_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    password_hash         TEXT,
    is_password_set       BOOLEAN NOT NULL DEFAULT FALSE,
    last_password_change  TIMESTAMPTZ,
    failed_login_attempts INTEGER NOT NULL DEFAULT 0
                          CONSTRAINT user_security_failed_login_attempts_check CHECK (failed_login_attempts >= 0),
    locked_until          TIMESTAMPTZ,
    mfa_enabled           BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_secret            TEXT,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- user_mfa_backup_codes: hashed one-time MFA recovery codes
CREATE TABLE user_mfa_backup_codes (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    UUID NOT NULL
               CONSTRAINT user_mfa_backup_codes_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    code_hash  VARCHAR(255) NOT NULL,
    used       BOOLEAN DEFAULT FALSE,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX user_mfa_backup_codes_user_id_idx ON user_mfa_backup_codes (user_id);

-- user_sessions: refresh-token sessions
CREATE TABLE user_sessions (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        UUID NOT NULL
                   CONSTRAINT user_sessions_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    refresh_token  TEXT NOT NULL CONSTRAINT user_sessions_refresh_token_key UNIQUE,
    device_type    VARCHAR(50),
    user_agent     TEXT,
    ip_address     VARCHAR(45),
    last_active_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoke_reason  VARCHAR(50)
);
CREATE INDEX user_sessions_user_id_idx ON user_sessions (user_id);

-- social_identities: OAuth identities linked to users
CREATE TABLE social_identities (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      UUID NOT NULL
                 CONSTRAINT social_identities_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    provider     VARCHAR(50) NOT NULL,
    provider_id  VARCHAR(255) NOT NULL,
    profile_data JSONB NOT NULL DEFAULT '{}',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CONSTRAINT social_identities_provider_provider_id_key UNIQUE (provider, provider_id)
);
CREATE INDEX social_identities_user_id_idx ON social_identities (user_id);

-- ==========================================
-- 2. MULTI-TENANCY & BILLING
-- ==========================================

-- organizations: tenants; slug unique among live rows only
CREATE TABLE organizations (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name       VARCHAR(255) NOT NULL,
    slug       VARCHAR(255) NOT NULL,
    settings   JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX organizations_slug_live_key ON organizations (slug) WHERE deleted_at IS NULL;

-- roles: per-organization roles with permission lists
CREATE TABLE roles (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      UUID NOT NULL
                CONSTRAINT roles_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    name        VARCHAR(100) NOT NULL,
    permissions TEXT[] NOT NULL DEFAULT '{}',
    CONSTRAINT roles_org_id_name_key UNIQUE (org_id, name)
);
CREATE INDEX roles_org_id_idx ON roles (org_id);

-- org_members: user membership in organizations
CREATE TABLE org_members (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     UUID NOT NULL
               CONSTRAINT org_members_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    UUID NOT NULL
               CONSTRAINT org_members_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    role_id    UUID NOT NULL
               CONSTRAINT org_members_role_id_fkey REFERENCES roles (id),
    joined_at  TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    invited_by UUID
               CONSTRAINT org_members_invited_by_fkey REFERENCES users (id),
    CONSTRAINT org_members_org_id_user_id_key UNIQUE (org_id, user_id)
);
CREATE INDEX org_members_user_id_idx ON org_members (user_id);
CREATE INDEX org_members_role_id_idx ON org_members (role_id);

-- invitations: pending/accepted org invitations; one PENDING invite per (org, email, case-insensitive)
CREATE TABLE invitations (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    email         VARCHAR(255) NOT NULL,
    org_id        UUID NOT NULL
                  CONSTRAINT invitations_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    role_id       UUID NOT NULL
                  CONSTRAINT invitations_role_id_fkey REFERENCES roles (id),
    token         VARCHAR(255) NOT NULL CONSTRAINT invitations_token_key UNIQUE,
    invited_by_id UUID NOT NULL
                  CONSTRAINT invitations_invited_by_id_fkey REFERENCES users (id),
    status        VARCHAR(50) NOT NULL DEFAULT 'PENDING',
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    accepted_at   TIMESTAMPTZ,
    resent_count  INTEGER DEFAULT 0
                  CONSTRAINT invitations_resent_count_check CHECK (resent_count >= 0),
    last_sent_at  TIMESTAMPTZ
);
-- (the DBML's plain index on token is already provided by invitations_token_key)
CREATE UNIQUE INDEX invitations_org_id_email_pending_key
    ON invitations (org_id, LOWER(email)) WHERE status = 'PENDING';

-- subscriptions: one billing subscription per organization
CREATE TABLE subscriptions (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id               UUID NOT NULL CONSTRAINT subscriptions_org_id_key UNIQUE
                         CONSTRAINT subscriptions_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    plan_id              VARCHAR(50) NOT NULL,
    status               VARCHAR(50) NOT NULL DEFAULT 'ACTIVE',
    stripe_customer_id   VARCHAR(255),
    stripe_sub_id        VARCHAR(255),
    quotas               JSONB NOT NULL DEFAULT '{}',
    current_period_start TIMESTAMPTZ,
    current_period_end   TIMESTAMPTZ,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX subscriptions_stripe_customer_id_idx ON subscriptions (stripe_customer_id);

-- org_usage_metrics: usage counters per organization and metric
CREATE TABLE org_usage_metrics (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        UUID NOT NULL
                  CONSTRAINT org_usage_metrics_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    metric_type   VARCHAR(50) NOT NULL,
    current_value BIGINT DEFAULT 0,
    reset_at      TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ DEFAULT NOW(),
    CONSTRAINT org_usage_metrics_org_id_metric_type_key UNIQUE (org_id, metric_type)
);
CREATE INDEX org_usage_metrics_org_id_idx ON org_usage_metrics (org_id);

-- api_keys: hashed API keys scoped to a user within an organization
CREATE TABLE api_keys (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash     VARCHAR(255) NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    key_prefix   VARCHAR(20) NOT NULL,
    name         VARCHAR(255) NOT NULL,
    user_id      UUID NOT NULL
                 CONSTRAINT api_keys_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    org_id       UUID NOT NULL
                 CONSTRAINT api_keys_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    scopes       TEXT[],
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);
CREATE INDEX api_keys_org_id_idx ON api_keys (org_id);

-- ==========================================
-- 3. WAREHOUSE & ASSETS
-- ==========================================

-- warehouses: asset stores owned by a user or an org (polymorphic owner, no FK)
CREATE TABLE warehouses (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id   UUID NOT NULL,
    owner_type VARCHAR(20) NOT NULL
               CONSTRAINT warehouses_owner_type_check CHECK (owner_type IN ('USER', 'ORG')),
    name       VARCHAR(255),
    is_system  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    deleted_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX warehouses_owner_id_owner_type_live_key
    ON warehouses (owner_id, owner_type) WHERE deleted_at IS NULL;

-- asset_collections: folders inside a warehouse (self-referencing tree)
CREATE TABLE asset_collections (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    warehouse_id         UUID NOT NULL
                         CONSTRAINT asset_collections_warehouse_id_fkey REFERENCES warehouses (id) ON DELETE CASCADE,
    name                 VARCHAR(255) NOT NULL,
    parent_collection_id UUID
                         CONSTRAINT asset_collections_parent_collection_id_fkey REFERENCES asset_collections (id),
    created_at           TIMESTAMPTZ DEFAULT NOW(),
    CONSTRAINT asset_collections_warehouse_id_name_key UNIQUE (warehouse_id, name)
);
CREATE INDEX asset_collections_parent_collection_id_idx ON asset_collections (parent_collection_id);

-- assets_block_templates: reusable block templates
CREATE TABLE assets_block_templates (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    warehouse_id   UUID NOT NULL
                   CONSTRAINT assets_block_templates_warehouse_id_fkey REFERENCES warehouses (id) ON DELETE CASCADE,
    collection_id  UUID
                   CONSTRAINT assets_block_templates_collection_id_fkey REFERENCES asset_collections (id) ON DELETE SET NULL,
    name           VARCHAR(255) NOT NULL,
    description    TEXT,
    thumbnail_url  TEXT,
    structure_data JSONB NOT NULL,
    version        VARCHAR(20) DEFAULT '1.0.0',
    created_at     TIMESTAMPTZ DEFAULT NOW(),
    updated_at     TIMESTAMPTZ DEFAULT NOW(),
    deleted_at     TIMESTAMPTZ
);
CREATE INDEX assets_block_templates_warehouse_id_created_at_idx ON assets_block_templates (warehouse_id, created_at);
CREATE INDEX assets_block_templates_collection_id_idx ON assets_block_templates (collection_id);

-- assets_invader_definitions: invader (behaviour plugin) definitions
CREATE TABLE assets_invader_definitions (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    warehouse_id   UUID NOT NULL
                   CONSTRAINT assets_invader_definitions_warehouse_id_fkey REFERENCES warehouses (id) ON DELETE CASCADE,
    collection_id  UUID
                   CONSTRAINT assets_invader_definitions_collection_id_fkey REFERENCES asset_collections (id) ON DELETE SET NULL,
    code           VARCHAR(100) NOT NULL CONSTRAINT assets_invader_definitions_code_key UNIQUE,
    name           VARCHAR(255) NOT NULL,
    category       VARCHAR(50) NOT NULL,
    config_schema  JSONB NOT NULL,
    compiler_hooks JSONB NOT NULL,
    version        VARCHAR(20) DEFAULT '1.0.0',
    created_at     TIMESTAMPTZ DEFAULT NOW(),
    updated_at     TIMESTAMPTZ DEFAULT NOW(),
    deleted_at     TIMESTAMPTZ
);
CREATE INDEX assets_invader_definitions_warehouse_id_created_at_idx ON assets_invader_definitions (warehouse_id, created_at);
CREATE INDEX assets_invader_definitions_collection_id_idx ON assets_invader_definitions (collection_id);

-- ==========================================
-- 4. CORE ENGINE (RUNTIME)
-- ==========================================

-- projects: org projects; slug unique per org among live rows only
CREATE TABLE projects (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        UUID NOT NULL
                  CONSTRAINT projects_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    name          VARCHAR(255) NOT NULL,
    slug          VARCHAR(255) NOT NULL,
    description   TEXT,
    visibility    VARCHAR(50) NOT NULL DEFAULT 'PRIVATE',
    status        VARCHAR(50) NOT NULL DEFAULT 'ACTIVE',
    created_by_id UUID NOT NULL
                  CONSTRAINT projects_created_by_id_fkey REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX projects_org_id_slug_live_key ON projects (org_id, slug) WHERE deleted_at IS NULL;
CREATE INDEX projects_org_id_created_at_idx ON projects (org_id, created_at);
CREATE INDEX projects_created_by_id_idx ON projects (created_by_id);

-- workspaces: collaborative documents inside a project
CREATE TABLE workspaces (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id UUID NOT NULL
               CONSTRAINT workspaces_project_id_fkey REFERENCES projects (id) ON DELETE CASCADE,
    name       VARCHAR(255) NOT NULL,
    type       VARCHAR(50) NOT NULL,
    created_by UUID NOT NULL
               CONSTRAINT workspaces_created_by_fkey REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ
);
CREATE INDEX workspaces_project_id_created_at_idx ON workspaces (project_id, created_at);
CREATE INDEX workspaces_created_by_idx ON workspaces (created_by);

-- core_blocks: blocks of a workspace (self-referencing tree)
CREATE TABLE core_blocks (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    UUID NOT NULL
                    CONSTRAINT core_blocks_workspace_id_fkey REFERENCES workspaces (id) ON DELETE CASCADE,
    parent_block_id UUID
                    CONSTRAINT core_blocks_parent_block_id_fkey REFERENCES core_blocks (id) ON DELETE CASCADE,
    origin_asset_id UUID
                    CONSTRAINT core_blocks_origin_asset_id_fkey REFERENCES assets_block_templates (id) ON DELETE SET NULL,
    type            VARCHAR(50) NOT NULL,
    name            VARCHAR(255) NOT NULL,
    config          JSONB NOT NULL DEFAULT '{}',
    visual          JSONB NOT NULL DEFAULT '{}',
    created_by_id   UUID
                    CONSTRAINT core_blocks_created_by_id_fkey REFERENCES users (id),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at      TIMESTAMPTZ
);
CREATE INDEX idx_blocks_filter ON core_blocks (workspace_id, type) WHERE deleted_at IS NULL;
CREATE INDEX core_blocks_parent_block_id_idx ON core_blocks (parent_block_id);
CREATE INDEX core_blocks_origin_asset_id_idx ON core_blocks (origin_asset_id);
CREATE INDEX core_blocks_created_by_id_idx ON core_blocks (created_by_id);

-- block_invader_usages: invaders applied to blocks
CREATE TABLE block_invader_usages (
    id               UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    block_id         UUID NOT NULL
                     CONSTRAINT block_invader_usages_block_id_fkey REFERENCES core_blocks (id) ON DELETE CASCADE,
    invader_asset_id UUID NOT NULL
                     CONSTRAINT block_invader_usages_invader_asset_id_fkey REFERENCES assets_invader_definitions (id) ON DELETE CASCADE,
    applied_version  VARCHAR(20),
    config_snapshot  JSONB,
    created_at       TIMESTAMPTZ DEFAULT NOW(),
    CONSTRAINT block_invader_usages_block_id_invader_asset_id_key UNIQUE (block_id, invader_asset_id)
);
CREATE INDEX block_invader_usages_invader_asset_id_idx ON block_invader_usages (invader_asset_id);

-- core_relations: edges between blocks; one live edge per (source, target)
CREATE TABLE core_relations (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    UUID NOT NULL
                    CONSTRAINT core_relations_workspace_id_fkey REFERENCES workspaces (id) ON DELETE CASCADE,
    source_block_id UUID NOT NULL
                    CONSTRAINT core_relations_source_block_id_fkey REFERENCES core_blocks (id) ON DELETE CASCADE,
    target_block_id UUID NOT NULL
                    CONSTRAINT core_relations_target_block_id_fkey REFERENCES core_blocks (id) ON DELETE CASCADE,
    type            VARCHAR(50) NOT NULL,
    rules           JSONB NOT NULL DEFAULT '{}',
    visual          JSONB NOT NULL DEFAULT '{}',
    deleted_at      TIMESTAMPTZ
);
CREATE INDEX core_relations_workspace_id_idx ON core_relations (workspace_id);
CREATE UNIQUE INDEX core_relations_source_block_id_target_block_id_live_key
    ON core_relations (source_block_id, target_block_id) WHERE deleted_at IS NULL;
CREATE INDEX core_relations_target_block_id_idx ON core_relations (target_block_id);

-- core_snapshots: named full-state project snapshots
CREATE TABLE core_snapshots (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id      UUID NOT NULL
                    CONSTRAINT core_snapshots_project_id_fkey REFERENCES projects (id) ON DELETE CASCADE,
    name            VARCHAR(255) NOT NULL,
    commit_message  TEXT,
    full_state_dump JSONB NOT NULL,
    created_by_id   UUID NOT NULL
                    CONSTRAINT core_snapshots_created_by_id_fkey REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX core_snapshots_project_id_created_at_idx ON core_snapshots (project_id, created_at);
CREATE INDEX core_snapshots_created_by_id_idx ON core_snapshots (created_by_id);

-- ==========================================
-- 5. COLLABORATION & OPS
-- ==========================================

-- comments: threaded comments on any target (polymorphic target, no FK)
CREATE TABLE comments (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    author_id         UUID NOT NULL
                      CONSTRAINT comments_author_id_fkey REFERENCES users (id),
    target_type       VARCHAR(50) NOT NULL,
    target_id         UUID NOT NULL,
    content           TEXT NOT NULL,
    parent_comment_id UUID
                      CONSTRAINT comments_parent_comment_id_fkey REFERENCES comments (id),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at        TIMESTAMPTZ
);
CREATE INDEX comments_target_type_target_id_created_at_idx ON comments (target_type, target_id, created_at);
CREATE INDEX comments_author_id_idx ON comments (author_id);
CREATE INDEX comments_parent_comment_id_idx ON comments (parent_comment_id);

-- notes: free-form notes on any owner (polymorphic owner, no FK)
CREATE TABLE notes (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_type VARCHAR(50) NOT NULL,
    owner_id   UUID NOT NULL,
    title      VARCHAR(255),
    content    TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at TIMESTAMPTZ
);
CREATE INDEX notes_owner_type_owner_id_idx ON notes (owner_type, owner_id);

-- chat_rooms: chat rooms per org, optionally tied to a project
CREATE TABLE chat_rooms (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     UUID NOT NULL
               CONSTRAINT chat_rooms_org_id_fkey REFERENCES organizations (id),
    project_id UUID
               CONSTRAINT chat_rooms_project_id_fkey REFERENCES projects (id),
    name       VARCHAR(255) NOT NULL
);
CREATE INDEX chat_rooms_org_id_idx ON chat_rooms (org_id);
CREATE INDEX chat_rooms_project_id_idx ON chat_rooms (project_id);

-- chat_messages: messages in a chat room
CREATE TABLE chat_messages (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    room_id    UUID NOT NULL
               CONSTRAINT chat_messages_room_id_fkey REFERENCES chat_rooms (id),
    sender_id  UUID
               CONSTRAINT chat_messages_sender_id_fkey REFERENCES users (id) ON DELETE SET NULL,
    content    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX chat_messages_room_id_created_at_idx ON chat_messages (room_id, created_at);
CREATE INDEX chat_messages_sender_id_idx ON chat_messages (sender_id);

-- files: uploaded files belonging to a project
CREATE TABLE files (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    uploader_id  UUID NOT NULL
                 CONSTRAINT files_uploader_id_fkey REFERENCES users (id),
    project_id   UUID NOT NULL
                 CONSTRAINT files_project_id_fkey REFERENCES projects (id),
    file_name    VARCHAR(255) NOT NULL,
    mime_type    VARCHAR(100) NOT NULL,
    file_size    BIGINT NOT NULL
                 CONSTRAINT files_file_size_check CHECK (file_size >= 0),
    storage_path TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    deleted_at   TIMESTAMPTZ
);
CREATE INDEX files_project_id_created_at_idx ON files (project_id, created_at);
CREATE INDEX files_uploader_id_idx ON files (uploader_id);

-- file_attachments: links files to any target (polymorphic target)
CREATE TABLE file_attachments (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id     UUID NOT NULL
                CONSTRAINT file_attachments_file_id_fkey REFERENCES files (id),
    target_type VARCHAR(50) NOT NULL,
    target_id   UUID NOT NULL,
    CONSTRAINT file_attachments_file_id_target_type_target_id_key UNIQUE (file_id, target_type, target_id)
);
CREATE INDEX file_attachments_target_type_target_id_idx ON file_attachments (target_type, target_id);

-- audit_logs: organization audit trail
CREATE TABLE audit_logs (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id      UUID NOT NULL
                CONSTRAINT audit_logs_org_id_fkey REFERENCES organizations (id),
    actor_id    UUID NOT NULL
                CONSTRAINT audit_logs_actor_id_fkey REFERENCES users (id),
    action      VARCHAR(100) NOT NULL,
    target_type VARCHAR(50),
    target_id   UUID,
    metadata    JSONB,
    ip_address  VARCHAR(45),
    user_agent  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX audit_logs_org_id_created_at_idx ON audit_logs (org_id, created_at);
CREATE INDEX audit_logs_target_type_target_id_idx ON audit_logs (target_type, target_id);
CREATE INDEX audit_logs_actor_id_idx ON audit_logs (actor_id);

-- edit_locks: short-lived exclusive edit locks on any resource
CREATE TABLE edit_locks (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    resource_type VARCHAR(50) NOT NULL,
    resource_id   UUID NOT NULL,
    locked_by     UUID NOT NULL
                  CONSTRAINT edit_locks_locked_by_fkey REFERENCES users (id),
    expires_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT edit_locks_resource_type_resource_id_key UNIQUE (resource_type, resource_id)
);
CREATE INDEX edit_locks_locked_by_idx ON edit_locks (locked_by);

-- feature_flags: global feature flags with default values
CREATE TABLE feature_flags (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key           VARCHAR(100) NOT NULL CONSTRAINT feature_flags_key_key UNIQUE,
    description   TEXT,
    default_value JSONB NOT NULL
);

-- org_feature_overrides: per-organization feature flag values
CREATE TABLE org_feature_overrides (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id          UUID NOT NULL
                    CONSTRAINT org_feature_overrides_org_id_fkey REFERENCES organizations (id) ON DELETE CASCADE,
    feature_flag_id UUID NOT NULL
                    CONSTRAINT org_feature_overrides_feature_flag_id_fkey REFERENCES feature_flags (id) ON DELETE CASCADE,
    value           JSONB NOT NULL,
    CONSTRAINT org_feature_overrides_org_id_feature_flag_id_key UNIQUE (org_id, feature_flag_id)
);
CREATE INDEX org_feature_overrides_feature_flag_id_idx ON org_feature_overrides (feature_flag_id);
