-- SQLite already keeps tags, links and metadata as text; this keeps the numbering in
-- lock-step with the PostgreSQL migration of the same number.
SELECT 1;
