-- Keep updated_at current on every UPDATE for tables that have the column.

-- trigger function
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$;

-- IAM & security
CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_security_set_updated_at
    BEFORE UPDATE ON user_security FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- multi-tenancy & billing
CREATE TRIGGER organizations_set_updated_at
    BEFORE UPDATE ON organizations FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER subscriptions_set_updated_at
    BEFORE UPDATE ON subscriptions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER org_usage_metrics_set_updated_at
    BEFORE UPDATE ON org_usage_metrics FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- warehouse & assets
CREATE TRIGGER assets_block_templates_set_updated_at
    BEFORE UPDATE ON assets_block_templates FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER assets_invader_definitions_set_updated_at
    BEFORE UPDATE ON assets_invader_definitions FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- core engine
CREATE TRIGGER projects_set_updated_at
    BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER core_blocks_set_updated_at
    BEFORE UPDATE ON core_blocks FOR EACH ROW EXECUTE FUNCTION set_updated_at();
