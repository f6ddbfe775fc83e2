CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id TEXT NOT NULL,
    domain TEXT NOT NULL,
    organizational_unit TEXT,
    email TEXT,
    password_hash TEXT,
    locked BOOLEAN NOT NULL DEFAULT 0,
    failure_count INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (user_id, domain)
);

CREATE TABLE authenticators (
    serial_no TEXT PRIMARY KEY NOT NULL,
    auth_type TEXT NOT NULL,
    applications TEXT NOT NULL,
    status TEXT NOT NULL,
    user_pk BIGINT REFERENCES users (id) ON DELETE SET NULL,
    sealed_key BLOB NOT NULL,
    license_limit INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    assigned_at BIGINT,
    activated_at BIGINT
);
CREATE INDEX authenticators_user ON authenticators (user_pk);
CREATE INDEX authenticators_status ON authenticators (status, serial_no);

CREATE TABLE registrations (
    registration_id TEXT PRIMARY KEY NOT NULL,
    user_pk BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    serial_no TEXT NOT NULL REFERENCES authenticators (serial_no) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    srp_salt BLOB NOT NULL,
    srp_verifier BLOB NOT NULL,
    sealed_ephemeral BLOB,
    ephemeral_expires_at BIGINT,
    failures INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX registrations_user ON registrations (user_pk);

CREATE TABLE device_instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    serial_no TEXT NOT NULL REFERENCES authenticators (serial_no) ON DELETE CASCADE,
    sequence_no INTEGER NOT NULL,
    device_type INTEGER NOT NULL,
    device_id TEXT,
    description TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    UNIQUE (serial_no, sequence_no)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    at BIGINT NOT NULL,
    client_addr TEXT,
    command TEXT NOT NULL,
    user_id TEXT,
    domain TEXT,
    serial_no TEXT,
    registration_id TEXT,
    status TEXT NOT NULL,
    return_code INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
