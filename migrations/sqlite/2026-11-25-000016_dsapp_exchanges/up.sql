-- DSAPP revision 3 (protocols.md section 4): every CPace key exchange of a registration counts
-- until an activation confirms one; the fourth revokes the registration.
ALTER TABLE registrations ADD COLUMN exchanges INTEGER NOT NULL DEFAULT 0;
-- Revision 1 registrations kept a chsKey that revision 3 cannot use (it needs the activation
-- password itself): the open ones are revoked and their secrets dropped.
UPDATE registrations SET status = 'revoked', sealed_secret = NULL, sealed_ephemeral = NULL,
    ephemeral_expires_at = NULL
    WHERE kind IN ('dsapp-v1', 'dsapp-v2') AND status IN ('pending', 'delivered');
