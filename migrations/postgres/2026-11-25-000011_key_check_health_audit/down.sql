ALTER TABLE audit_log DROP COLUMN occurrences;
DROP TABLE health_probe;
DROP TABLE key_check;
