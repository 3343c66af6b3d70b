-- The service registry. Tags are kept twice: as a JSON document for reading, and one row per
-- tag in service_tags for filtering and for matching cloud resources to services.
CREATE TABLE services (
    id           BLOB    PRIMARY KEY NOT NULL,
    name         TEXT    NOT NULL UNIQUE,
    display_name TEXT,
    description  TEXT    NOT NULL DEFAULT '',
    owner        TEXT    NOT NULL,
    tags         TEXT    NOT NULL DEFAULT '{}',
    links        TEXT    NOT NULL DEFAULT '{}',
    metadata     TEXT    NOT NULL DEFAULT '{}',
    revision     INTEGER NOT NULL DEFAULT 1,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);

CREATE INDEX services_owner_name ON services (owner, name);

CREATE TABLE service_tags (
    service_id BLOB NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (service_id, key)
);

CREATE INDEX service_tags_key_value ON service_tags (key, value);
