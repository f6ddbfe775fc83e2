DROP TABLE hermod_callbacks;
DROP TABLE device_keys;
DROP TABLE device_profiles;
DROP TABLE hermod_commands;
DROP TABLE attestation_keys;
DROP TABLE hermod_clients;
