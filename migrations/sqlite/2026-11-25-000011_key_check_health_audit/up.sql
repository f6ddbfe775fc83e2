-- The master key's check value: a constant sealed under the key when the database is created
-- (or, for a database from before this migration, when a key first opens its sealed rows).
-- Every provd command refuses to run with a key that does not open it.
CREATE TABLE key_check (
    id INTEGER PRIMARY KEY NOT NULL,
    sealed_check BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row, rewritten by the health check's write probe.
CREATE TABLE health_probe (
    id INTEGER PRIMARY KEY NOT NULL,
    probes BIGINT NOT NULL
);
INSERT INTO health_probe (id, probes) VALUES (1, 0);

-- How many calls one audit row stands for: rate-limited refusals from one address are
-- aggregated into one row per minute.
ALTER TABLE audit_log ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;
