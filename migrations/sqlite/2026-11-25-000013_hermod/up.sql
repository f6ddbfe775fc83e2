-- The Hermod-style REST front (spec hermod.md section 7.1).
CREATE TABLE hermod_clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    key_sha256 BLOB NOT NULL,
    callback_url TEXT NOT NULL,
    sealed_callback_secret BLOB NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE attestation_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kid TEXT NOT NULL UNIQUE,
    thumbprint TEXT NOT NULL UNIQUE,
    public_jwk TEXT NOT NULL,
    algs TEXT NOT NULL,
    jwk_kid TEXT,
    not_before BIGINT,
    not_after BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE hermod_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    client_id TEXT NOT NULL REFERENCES hermod_clients (client_id) ON DELETE CASCADE,
    external_id TEXT,
    command_type TEXT NOT NULL,
    state TEXT NOT NULL,
    nonce TEXT NOT NULL,
    user_pk BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    request_json TEXT NOT NULL,
    bid TEXT NOT NULL UNIQUE,
    mid TEXT NOT NULL UNIQUE,
    token_sha256 BLOB NOT NULL,
    -- The token sealed under the master key, only to render the QR code for its client.
    sealed_token BLOB,
    box_id TEXT NOT NULL UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    token_failures INTEGER NOT NULL DEFAULT 0,
    response_jws TEXT,
    error TEXT,
    profile_id TEXT,
    created_at BIGINT NOT NULL,
    timeout_at BIGINT NOT NULL,
    lifespan_at BIGINT NOT NULL,
    fetched_at BIGINT,
    answered_at BIGINT,
    UNIQUE (client_id, nonce)
);
CREATE INDEX hermod_commands_timeout ON hermod_commands (state, timeout_at);
CREATE INDEX hermod_commands_lifespan ON hermod_commands (lifespan_at);

CREATE TABLE device_profiles (
    profile_id TEXT PRIMARY KEY NOT NULL,
    user_pk BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    command_id BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    name TEXT NOT NULL,
    servername TEXT NOT NULL,
    box_id TEXT NOT NULL,
    attestation_key_id BIGINT REFERENCES attestation_keys (id),
    deviceinfo TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX device_profiles_user ON device_profiles (user_pk);

CREATE TABLE device_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    profile_id TEXT NOT NULL REFERENCES device_profiles (profile_id) ON DELETE CASCADE,
    keyid TEXT NOT NULL,
    usage TEXT NOT NULL,
    kty TEXT NOT NULL,
    alg TEXT NOT NULL,
    bits INTEGER NOT NULL,
    public_jwk TEXT NOT NULL,
    thumbprint TEXT NOT NULL UNIQUE,
    key_state TEXT NOT NULL,
    certreq BLOB,
    certificate BLOB,
    created_at BIGINT NOT NULL,
    UNIQUE (profile_id, keyid)
);

CREATE TABLE hermod_callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    command_id BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    sent_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX hermod_callbacks_due ON hermod_callbacks (status, next_attempt_at);
