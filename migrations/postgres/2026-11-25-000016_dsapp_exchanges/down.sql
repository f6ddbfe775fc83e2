ALTER TABLE registrations DROP COLUMN exchanges;
