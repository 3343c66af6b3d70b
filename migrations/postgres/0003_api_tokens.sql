-- API tokens. Only a SHA-256 hash of each (high-entropy) token is stored; the token itself is
-- shown once, when it is created.
CREATE TABLE api_tokens (
    id         UUID        PRIMARY KEY,
    name       TEXT        NOT NULL UNIQUE,
    scope      TEXT        NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    token_hash TEXT        NOT NULL UNIQUE,
    prefix     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
