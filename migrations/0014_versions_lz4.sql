-- Versions (issue 14): compress large document states with lz4 instead of pglz.
--
-- A version of the 10k-block + 10k-relation canvas is a 5 MB bytea. pglz (the default TOAST
-- compression) spends ~50 ms compressing it on every insert (taking a version, storing the state
-- before a restore); lz4 takes ~10 ms and reads back faster, for ~5 % more bytes (1.93 MB instead
-- of 1.84 MB). A restore that re-inserts a whole canvas logs an update of that size too, before it
-- answers: the update log gets lz4 as well. Measured on PostgreSQL 15; see bench/README.md.
--
-- lz4 exists from PostgreSQL 14 on, and only in builds configured --with-lz4. Elsewhere the columns
-- keep pglz (the behaviour before this migration), so the migration runs on every server.
-- Existing rows keep their compression; only values written from now on use lz4.
DO $$
BEGIN
    ALTER TABLE core_snapshots ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE workspace_update_log ALTER COLUMN update_bytes SET COMPRESSION lz4;
EXCEPTION
    WHEN feature_not_supported OR syntax_error OR invalid_parameter_value THEN
        RAISE NOTICE 'document states keep pglz compression: %', SQLERRM;
END
$$;
