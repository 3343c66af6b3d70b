-- Rules: ordered steps of actions, on demand or on a cron schedule. rule_runs holds one row per
-- run; a scheduled run's (rule, slot) is unique, which is what makes a slot run at most once
-- across replicas. schedule_since is when the current schedule began: slots before it are not
-- the rule's. A running run's lease is renewed by the replica running it; once it expires the
-- run is abandoned by any scheduler.
CREATE TABLE rules (
    id             UUID        PRIMARY KEY,
    name           TEXT        COLLATE "C" NOT NULL UNIQUE,
    description    TEXT        NOT NULL DEFAULT '',
    service        TEXT,
    schedule       TEXT,
    timezone       TEXT        NOT NULL DEFAULT 'UTC',
    enabled        BOOLEAN     NOT NULL DEFAULT TRUE,
    on_failure     TEXT        NOT NULL DEFAULT 'stop',
    steps          TEXT        NOT NULL DEFAULT '[]',
    revision       BIGINT      NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    schedule_since TIMESTAMPTZ NOT NULL
);

CREATE TABLE rule_runs (
    id            UUID        PRIMARY KEY,
    rule_id       UUID        NOT NULL REFERENCES rules (id) ON DELETE CASCADE,
    rule_name     TEXT        NOT NULL,
    scheduled_for TIMESTAMPTZ,
    triggered_by  TEXT        NOT NULL,
    actor         TEXT        NOT NULL,
    dry_run       BOOLEAN     NOT NULL DEFAULT FALSE,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    outcome       TEXT        NOT NULL,
    error         TEXT,
    steps         TEXT        NOT NULL DEFAULT '[]',
    owner         TEXT,
    lease_until   TIMESTAMPTZ
);

CREATE UNIQUE INDEX rule_runs_slot ON rule_runs (rule_id, scheduled_for);
CREATE INDEX rule_runs_rule ON rule_runs (rule_id, id);
CREATE INDEX rule_runs_lease ON rule_runs (outcome, lease_until);
