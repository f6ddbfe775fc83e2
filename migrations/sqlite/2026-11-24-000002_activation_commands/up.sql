-- PROVISIONCMD_REGISTER, DSAPP (ECDH), MDL and e-mail delivery.

-- DSAPP registrations keep their chsKey, sealed under the master key (SRP ones keep salt and
-- verifier in the srp_* columns and leave this NULL).
ALTER TABLE registrations ADD COLUMN sealed_secret BLOB;

ALTER TABLE authenticators ADD COLUMN reactivation_counter INTEGER NOT NULL DEFAULT 0;
-- Multi-device licensing: the license key (sealed) and the challenge of the last Activation
-- Message 1, spent when a device is added with it.
ALTER TABLE authenticators ADD COLUMN sealed_license_key BLOB;
ALTER TABLE authenticators ADD COLUMN mdl_challenge BLOB;

-- The MDL registration that added the instance, for its activation step.
ALTER TABLE device_instances ADD COLUMN registration_id TEXT;
ALTER TABLE device_instances ADD COLUMN sealed_instance_key BLOB;
ALTER TABLE device_instances ADD COLUMN am2_nonce BLOB;
ALTER TABLE device_instances ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;

-- Messages to deliver (e-mail), written in the transaction that produced them and sent by a
-- worker afterwards, so that a crash between commit and send loses nothing.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    created_at BIGINT NOT NULL,
    command TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    sealed_body BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
