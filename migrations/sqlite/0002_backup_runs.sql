-- One row per group per backup run: what was stored (or why not), so the last successful
-- backup of each group can be reported and alerted on.
CREATE TABLE backup_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id    TEXT    NOT NULL,
    version     INTEGER,
    md5         TEXT,
    path        TEXT,
    bytes       INTEGER,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('stored', 'unchanged', 'failed')),
    error       TEXT,
    duration_ms INTEGER NOT NULL,
    started_at  TEXT    NOT NULL
);

CREATE INDEX backup_runs_group_started ON backup_runs (group_id, started_at);
