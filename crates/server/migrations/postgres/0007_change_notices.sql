-- Servers keep recently read keys and images in memory. Every statement that updates or
-- deletes images, keys or organisations tells all servers listening on the channel
-- pictograph_changes which of their copies to drop. One notice per statement (and per
-- transaction: PostgreSQL sends equal notices of one transaction once), whatever the number
-- of rows. Inserts send none: a lookup that found nothing is never kept.
CREATE FUNCTION notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pictograph_changes', TG_ARGV[0]);
    RETURN NULL;
END;
$$;

CREATE TRIGGER images_changes AFTER UPDATE OR DELETE OR TRUNCATE ON images
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changes('images');
CREATE TRIGGER api_keys_changes AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changes('keys');
CREATE TRIGGER organizations_changes AFTER UPDATE OR DELETE OR TRUNCATE ON organizations
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changes('keys');
