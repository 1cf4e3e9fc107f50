-- A dataset being deleted is first hidden: moved to another organisation, which takes its
-- images out of every key's reach at once. Servers keep recently read images in memory by
-- organisation, so that move must drop their copies as an update of the images would.
CREATE TRIGGER datasets_changes AFTER UPDATE OF org_id ON datasets
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changes('images');
