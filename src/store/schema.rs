// The tables of both migration sets (`migrations/sqlite`, `migrations/postgres`); one schema
// serves both backends through `DbConnection`.

diesel::table! {
    users (id) {
        id -> BigInt,
        user_id -> Text,
        domain -> Text,
        organizational_unit -> Nullable<Text>,
        email -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        locked -> Bool,
        failure_count -> Integer,
        created_at -> BigInt,
        updated_at -> BigInt,
        locked_until -> Nullable<BigInt>,
        lock_count -> Integer,
        disabled -> Bool,
    }
}

diesel::table! {
    authenticators (serial_no) {
        serial_no -> Text,
        auth_type -> Text,
        applications -> Text,
        status -> Text,
        user_pk -> Nullable<BigInt>,
        sealed_key -> Binary,
        license_limit -> Integer,
        created_at -> BigInt,
        assigned_at -> Nullable<BigInt>,
        activated_at -> Nullable<BigInt>,
        reactivation_counter -> Integer,
        sealed_license_key -> Nullable<Binary>,
        mdl_challenge -> Nullable<Binary>,
        disabled -> Bool,
        reactivations -> Integer,
        last_otp_step -> Nullable<BigInt>,
        otp_failures -> Integer,
    }
}

diesel::table! {
    registrations (registration_id) {
        registration_id -> Text,
        user_pk -> BigInt,
        serial_no -> Text,
        kind -> Text,
        status -> Text,
        srp_salt -> Binary,
        srp_verifier -> Binary,
        sealed_ephemeral -> Nullable<Binary>,
        ephemeral_expires_at -> Nullable<BigInt>,
        failures -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
        sealed_secret -> Nullable<Binary>,
        sealed_new_key -> Nullable<Binary>,
        exchanges -> Integer,
    }
}

diesel::table! {
    device_instances (id) {
        id -> BigInt,
        serial_no -> Text,
        sequence_no -> Integer,
        device_type -> Integer,
        device_id -> Nullable<Text>,
        description -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        registration_id -> Nullable<Text>,
        sealed_instance_key -> Nullable<Binary>,
        am2_nonce -> Nullable<Binary>,
        failures -> Integer,
        last_otp_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        client_addr -> Nullable<Text>,
        command -> Text,
        user_id -> Nullable<Text>,
        domain -> Nullable<Text>,
        serial_no -> Nullable<Text>,
        registration_id -> Nullable<Text>,
        status -> Text,
        return_code -> Integer,
        status_code -> Integer,
        detail -> Nullable<Text>,
        occurrences -> Integer,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        created_at -> BigInt,
        command -> Text,
        recipient -> Text,
        subject -> Text,
        sealed_body -> Binary,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    key_check (id) {
        id -> Integer,
        sealed_check -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    health_probe (id) {
        id -> Integer,
        probes -> BigInt,
    }
}

diesel::table! {
    hermod_clients (client_id) {
        client_id -> Text,
        key_sha256 -> Binary,
        callback_url -> Text,
        sealed_callback_secret -> Binary,
        disabled -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    attestation_keys (id) {
        id -> BigInt,
        kid -> Text,
        thumbprint -> Text,
        public_jwk -> Text,
        algs -> Text,
        jwk_kid -> Nullable<Text>,
        not_before -> Nullable<BigInt>,
        not_after -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    hermod_commands (id) {
        id -> BigInt,
        client_id -> Text,
        external_id -> Nullable<Text>,
        command_type -> Text,
        state -> Text,
        nonce -> Text,
        user_pk -> BigInt,
        request_json -> Text,
        bid -> Text,
        mid -> Text,
        token_sha256 -> Binary,
        sealed_token -> Nullable<Binary>,
        box_id -> Text,
        attempts -> Integer,
        token_failures -> Integer,
        response_jws -> Nullable<Text>,
        error -> Nullable<Text>,
        profile_id -> Nullable<Text>,
        created_at -> BigInt,
        timeout_at -> BigInt,
        lifespan_at -> BigInt,
        fetched_at -> Nullable<BigInt>,
        answered_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    device_profiles (profile_id) {
        profile_id -> Text,
        user_pk -> BigInt,
        command_id -> BigInt,
        client_id -> Text,
        name -> Text,
        servername -> Text,
        box_id -> Text,
        attestation_key_id -> Nullable<BigInt>,
        deviceinfo -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    device_keys (id) {
        id -> BigInt,
        profile_id -> Text,
        keyid -> Text,
        usage -> Text,
        kty -> Text,
        alg -> Text,
        bits -> Integer,
        public_jwk -> Text,
        thumbprint -> Text,
        key_state -> Text,
        certreq -> Nullable<Binary>,
        certificate -> Nullable<Binary>,
        created_at -> BigInt,
    }
}

diesel::table! {
    hermod_callbacks (id) {
        id -> BigInt,
        command_id -> BigInt,
        client_id -> Text,
        url -> Text,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::joinable!(authenticators -> users (user_pk));
diesel::joinable!(registrations -> users (user_pk));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    authenticators,
    registrations,
    device_instances,
    audit_log,
    outbox,
    key_check,
    health_probe
);
diesel::joinable!(hermod_commands -> users (user_pk));
diesel::joinable!(device_profiles -> users (user_pk));
diesel::joinable!(device_keys -> device_profiles (profile_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    hermod_clients,
    attestation_keys,
    hermod_commands,
    device_profiles,
    device_keys,
    hermod_callbacks
);
