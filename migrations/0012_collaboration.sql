-- Collaboration (issue 16): comments, notes, chat and files on the seed tables.
-- The seed tables are polymorphic (target_type/target_id, owner_type/owner_id); the columns added
-- here scope each row to its tenant so every read can be checked against the caller's organization.

-- Comments: a thread root is anchored to a BLOCK, a RELATION or the WORKSPACE itself; replies name
-- their root in parent_comment_id and share its anchor. A comment on a block whose block is later
-- deleted stays readable: "orphaned" is read from the projection (core_blocks.deleted_at), so an
-- undo that brings the block back un-orphans it.
ALTER TABLE comments
    ADD COLUMN workspace_id   UUID CONSTRAINT comments_workspace_id_fkey REFERENCES workspaces (id),
    ADD COLUMN edited_at      TIMESTAMPTZ,
    ADD COLUMN resolved_at    TIMESTAMPTZ,
    ADD COLUMN resolved_by_id UUID CONSTRAINT comments_resolved_by_id_fkey REFERENCES users (id),
    ADD CONSTRAINT comments_target_type_check
        CHECK (target_type IN ('BLOCK', 'RELATION', 'WORKSPACE'));
CREATE INDEX comments_workspace_id_created_at_idx ON comments (workspace_id, created_at, id);

-- @mentions of organization members, stored with the comment that made them.
CREATE TABLE comment_mentions (
    comment_id UUID NOT NULL CONSTRAINT comment_mentions_comment_id_fkey REFERENCES comments (id),
    user_id    UUID NOT NULL CONSTRAINT comment_mentions_user_id_fkey REFERENCES users (id),
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_mentions_user_id_idx ON comment_mentions (user_id);

-- Files: content-addressed bytes (storage_path is the store key, derived from checksum_sha256,
-- never from a client's file name).
ALTER TABLE files
    ADD COLUMN checksum_sha256 CHAR(64);

-- Attachments point at a COMMENT, a CHAT_MESSAGE or a BLOCK (of workspace_id).
ALTER TABLE file_attachments
    ADD COLUMN workspace_id UUID CONSTRAINT file_attachments_workspace_id_fkey REFERENCES workspaces (id),
    ADD COLUMN created_by_id UUID CONSTRAINT file_attachments_created_by_id_fkey REFERENCES users (id),
    ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    ADD CONSTRAINT file_attachments_target_type_check
        CHECK (target_type IN ('BLOCK', 'COMMENT', 'CHAT_MESSAGE'));

-- Chat: one default room per workspace (project_id set, workspace_id set) or rooms per project.
ALTER TABLE chat_rooms
    ADD COLUMN workspace_id UUID CONSTRAINT chat_rooms_workspace_id_fkey REFERENCES workspaces (id),
    ADD COLUMN created_at TIMESTAMPTZ NOT NULL DEFAULT NOW();
CREATE UNIQUE INDEX chat_rooms_workspace_id_key ON chat_rooms (workspace_id)
    WHERE workspace_id IS NOT NULL;

ALTER TABLE chat_messages
    ADD COLUMN edited_at  TIMESTAMPTZ,
    ADD COLUMN deleted_at TIMESTAMPTZ;
CREATE INDEX chat_messages_room_id_created_at_id_idx ON chat_messages (room_id, created_at, id);

-- Notes: the API's notes are owned by a PROJECT or a WORKSPACE; PRIVATE notes are seen by their author only, SHARED
-- ones by every member who reaches the owner.
ALTER TABLE notes
    ADD COLUMN org_id        UUID CONSTRAINT notes_org_id_fkey REFERENCES organizations (id),
    ADD COLUMN created_by_id UUID CONSTRAINT notes_created_by_id_fkey REFERENCES users (id),
    ADD COLUMN visibility    VARCHAR(20) NOT NULL DEFAULT 'PRIVATE',
    ADD COLUMN updated_at    TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    ADD CONSTRAINT notes_visibility_check CHECK (visibility IN ('PRIVATE', 'SHARED'));
-- owner_type stays open as the seed has it (the API writes PROJECT or WORKSPACE and reads only
-- those).
