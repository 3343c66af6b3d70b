-- One row per recorded action run (CLI, HTTP or a rule): what ran with which params, who ran
-- it, how it ended, and the result for each target. Ids are UUIDv7, so id order is start order.
-- Documents are kept as the exact JSON text pincher writes, as in services.
CREATE TABLE action_runs (
    id          UUID        PRIMARY KEY,
    action      TEXT        NOT NULL,
    params      TEXT        NOT NULL DEFAULT '{}',
    triggered_by TEXT        NOT NULL,
    actor       TEXT        NOT NULL,
    dry_run     BOOLEAN     NOT NULL DEFAULT FALSE,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    outcome     TEXT        NOT NULL,
    error       TEXT,
    results     TEXT        NOT NULL DEFAULT '[]',
    output      TEXT
);

CREATE INDEX action_runs_action ON action_runs (action, id);
CREATE INDEX action_runs_outcome ON action_runs (outcome, id);
