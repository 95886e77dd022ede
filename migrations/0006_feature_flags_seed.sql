-- Feature flags every deployment knows about (per-organization overrides live in
-- org_feature_overrides). Defaults are JSON so a flag can be a boolean, a number or a variant name.
INSERT INTO feature_flags (key, description, default_value) VALUES
    ('canvas.relations', 'Relation edges between canvas blocks', 'true'),
    ('hocuspocus', 'Accept Hocuspocus-framed WebSocket clients', 'false'),
    ('canvas.max_zoom', 'Largest canvas zoom factor the client offers', '4')
ON CONFLICT (key) DO NOTHING;

-- Audit log filters by action within an organization.
CREATE INDEX IF NOT EXISTS audit_logs_org_id_action_created_at_idx
    ON audit_logs (org_id, action, created_at);
