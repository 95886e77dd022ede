-- The warehouse as a feature (docs/design.md §17).

-- Invader codes are unique per warehouse among live definitions, not across the whole database:
-- a global unique code would let one organization learn which codes another uses (409 vs 201),
-- and a soft-deleted definition would keep its code forever.
ALTER TABLE assets_invader_definitions DROP CONSTRAINT assets_invader_definitions_code_key;
CREATE UNIQUE INDEX assets_invader_definitions_warehouse_code_live_key
    ON assets_invader_definitions (warehouse_id, code) WHERE deleted_at IS NULL;

-- Lists page by the keyset (created_at, id): a NULL created_at would fall out of every page.
UPDATE warehouses SET created_at = NOW() WHERE created_at IS NULL;
ALTER TABLE warehouses ALTER COLUMN created_at SET NOT NULL;
UPDATE asset_collections SET created_at = NOW() WHERE created_at IS NULL;
ALTER TABLE asset_collections ALTER COLUMN created_at SET NOT NULL;
UPDATE assets_block_templates SET created_at = NOW() WHERE created_at IS NULL;
ALTER TABLE assets_block_templates ALTER COLUMN created_at SET NOT NULL;
UPDATE assets_invader_definitions SET created_at = NOW() WHERE created_at IS NULL;
ALTER TABLE assets_invader_definitions ALTER COLUMN created_at SET NOT NULL;

-- Collections of a warehouse by parent (the folder tree).
CREATE INDEX asset_collections_warehouse_id_created_at_idx ON asset_collections (warehouse_id, created_at);

-- The new permission `assets:manage` (create, edit and delete warehouse content) for the default
-- roles of existing organizations that would have received it at creation: Owner, Admin, Editor.
UPDATE roles SET permissions = array_append(permissions, 'assets:manage')
WHERE name IN ('Owner', 'Admin', 'Editor') AND NOT ('assets:manage' = ANY (permissions));
