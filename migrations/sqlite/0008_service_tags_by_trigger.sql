-- service_tags is kept by the database from services.tags: a create or an update of a service
-- is then one statement, atomic on its own, instead of a transaction of one statement per tag.
CREATE TRIGGER service_tags_after_insert AFTER INSERT ON services
BEGIN
    INSERT INTO service_tags (service_id, key, value)
        SELECT NEW.id, key, value FROM json_each(NEW.tags);
END;

CREATE TRIGGER service_tags_after_update AFTER UPDATE OF tags ON services
BEGIN
    DELETE FROM service_tags WHERE service_id = NEW.id;
    INSERT INTO service_tags (service_id, key, value)
        SELECT NEW.id, key, value FROM json_each(NEW.tags);
END;
