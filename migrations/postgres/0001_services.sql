-- The service registry. Tags are kept twice: as a JSON document for reading, and one row per
-- tag in service_tags for filtering and for matching cloud resources to services.
-- Names use the "C" collation so listing order and cursors match SQLite's byte order.
CREATE TABLE services (
    id           UUID        PRIMARY KEY,
    name         TEXT        COLLATE "C" NOT NULL UNIQUE,
    display_name TEXT,
    description  TEXT        NOT NULL DEFAULT '',
    owner        TEXT        NOT NULL,
    tags         JSONB       NOT NULL DEFAULT '{}',
    links        JSONB       NOT NULL DEFAULT '{}',
    metadata     JSONB       NOT NULL DEFAULT '{}',
    revision     BIGINT      NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX services_owner_name ON services (owner, name);

CREATE TABLE service_tags (
    service_id UUID NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (service_id, key)
);

CREATE INDEX service_tags_key_value ON service_tags (key, value);
