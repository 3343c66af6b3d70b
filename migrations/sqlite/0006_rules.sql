-- Rules: ordered steps of actions, on demand or on a cron schedule. rule_runs holds one row per
-- run; a scheduled run's (rule, slot) is unique, which is what makes a slot run at most once
-- across replicas. schedule_since is when the current schedule began: slots before it are not
-- the rule's. A running run's lease is renewed by the replica running it; once it expires the
-- run is abandoned by any scheduler.
CREATE TABLE rules (
    id             BLOB    PRIMARY KEY NOT NULL,
    name           TEXT    NOT NULL UNIQUE,
    description    TEXT    NOT NULL DEFAULT '',
    service        TEXT,
    schedule       TEXT,
    timezone       TEXT    NOT NULL DEFAULT 'UTC',
    enabled        INTEGER NOT NULL DEFAULT 1,
    on_failure     TEXT    NOT NULL DEFAULT 'stop',
    steps          TEXT    NOT NULL DEFAULT '[]',
    revision       INTEGER NOT NULL DEFAULT 1,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    schedule_since TEXT    NOT NULL
);

CREATE TABLE rule_runs (
    id            BLOB    PRIMARY KEY NOT NULL,
    rule_id       BLOB    NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    rule_name     TEXT    NOT NULL,
    scheduled_for TEXT,
    triggered_by  TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    dry_run       INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT,
    finished_at   TEXT,
    outcome       TEXT    NOT NULL,
    error         TEXT,
    steps         TEXT    NOT NULL DEFAULT '[]',
    owner         TEXT,
    lease_until   TEXT
);

CREATE UNIQUE INDEX rule_runs_slot ON rule_runs (rule_id, scheduled_for);
CREATE INDEX rule_runs_rule ON rule_runs (rule_id, id);
CREATE INDEX rule_runs_lease ON rule_runs (outcome, lease_until);
