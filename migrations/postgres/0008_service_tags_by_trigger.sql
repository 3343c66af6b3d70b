-- service_tags is kept by the database from services.tags: a create or an update of a service
-- is then one statement, atomic on its own, instead of a transaction of one statement per tag.
CREATE FUNCTION service_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM service_tags WHERE service_id = NEW.id;
    END IF;
    INSERT INTO service_tags (service_id, key, value)
        SELECT NEW.id, key, value FROM jsonb_each_text(NEW.tags::jsonb);
    RETURN NULL;
END
$$;

CREATE TRIGGER service_tags_after_insert AFTER INSERT ON services
    FOR EACH ROW EXECUTE FUNCTION service_tags_sync();

CREATE TRIGGER service_tags_after_update AFTER UPDATE OF tags ON services
    FOR EACH ROW EXECUTE FUNCTION service_tags_sync();
