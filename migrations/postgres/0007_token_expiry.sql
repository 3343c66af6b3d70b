-- Tokens may expire, and record when they were last used (set when a replica verifies one
-- against the database, so at most token_cache_ttl_secs behind).
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
ALTER TABLE api_tokens ADD COLUMN last_used_at TIMESTAMPTZ;
