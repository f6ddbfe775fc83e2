-- Issue 10: an authenticator lifecycle a bank can trust.

-- Lock expiry: a lock ends at locked_until (NULL with locked = true: until an administrator
-- unlocks); lock_count counts locks in a row, for the growing lock duration. A disabled user
-- cannot register or activate.
ALTER TABLE users ADD COLUMN locked_until BIGINT;
ALTER TABLE users ADD COLUMN lock_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

-- A disabled authenticator is neither handed out nor registered nor activated. reactivations
-- counts completed re-keyings of an active authenticator; last_otp_step is the last accepted
-- TOTP time step of its current key (single use); otp_failures counts wrong OTPs presented
-- for it outside a registration.
ALTER TABLE authenticators ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE authenticators ADD COLUMN reactivations INTEGER NOT NULL DEFAULT 0;
ALTER TABLE authenticators ADD COLUMN last_otp_step BIGINT;
ALTER TABLE authenticators ADD COLUMN otp_failures INTEGER NOT NULL DEFAULT 0;

-- Every registration prepares its own new key (sealed); it replaces the authenticator's key
-- when the registration's activation completes.
ALTER TABLE registrations ADD COLUMN sealed_new_key BYTEA;

ALTER TABLE device_instances ADD COLUMN last_otp_step BIGINT;

-- Registrations in flight were made without a new key, and SRP verifiers were stored
-- unsealed: they are dropped (their users register again); spent ones keep no verifier.
DELETE FROM device_instances WHERE status = 'pending';
DELETE FROM registrations WHERE status IN ('pending', 'delivered');
UPDATE registrations SET srp_verifier = decode('', 'hex');
