DROP TABLE audit_log;
DROP TABLE device_instances;
DROP TABLE registrations;
DROP TABLE authenticators;
DROP TABLE users;
