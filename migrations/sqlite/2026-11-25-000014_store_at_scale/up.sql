-- Choosing a free authenticator is a lookup in this partial index whatever the planner's
-- statistics say: it holds only the free ones, in the order they are handed out.
CREATE INDEX authenticators_free ON authenticators (serial_no)
    WHERE status = 'available' AND user_pk IS NULL;
-- The sweeper reads only what has expired.
CREATE INDEX registrations_expiry ON registrations (expires_at);
CREATE INDEX registrations_ephemeral_expiry ON registrations (ephemeral_expires_at)
    WHERE ephemeral_expires_at IS NOT NULL;
