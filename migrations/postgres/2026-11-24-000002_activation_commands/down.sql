DROP TABLE outbox;
ALTER TABLE device_instances DROP COLUMN failures;
ALTER TABLE device_instances DROP COLUMN am2_nonce;
ALTER TABLE device_instances DROP COLUMN sealed_instance_key;
ALTER TABLE device_instances DROP COLUMN registration_id;
ALTER TABLE authenticators DROP COLUMN mdl_challenge;
ALTER TABLE authenticators DROP COLUMN sealed_license_key;
ALTER TABLE authenticators DROP COLUMN reactivation_counter;
ALTER TABLE registrations DROP COLUMN sealed_secret;
