-- Keep tags, links and metadata as the exact JSON text pincher writes. JSONB rewrites numbers
-- (1.7976931348623157e308 becomes 309 digits), which then no longer read back as a double.
ALTER TABLE services
    ALTER COLUMN tags TYPE TEXT USING tags::text,
    ALTER COLUMN tags SET DEFAULT '{}',
    ALTER COLUMN links TYPE TEXT USING links::text,
    ALTER COLUMN links SET DEFAULT '{}',
    ALTER COLUMN metadata TYPE TEXT USING metadata::text,
    ALTER COLUMN metadata SET DEFAULT '{}';
