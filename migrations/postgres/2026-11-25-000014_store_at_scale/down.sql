DROP INDEX registrations_ephemeral_expiry;
DROP INDEX registrations_expiry;
DROP INDEX authenticators_free;
