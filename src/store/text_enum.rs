//! Enums kept in TEXT columns. The columns stay plain TEXT (no CHECK constraint, no database
//! enum type: one schema for SQLite and PostgreSQL); the Rust side reads and writes the enum
//! through diesel's `ToSql`/`FromSql`, so no query compares or writes a status as a string.
//! A value read back that the enum does not know is a deserialization error naming its
//! column (`StoreError::Corrupt`), never a panic.

/// An enum stored as TEXT in one column.
pub(crate) trait TextEnum: Sized + Copy + 'static {
    /// `table.column`, for the error when the column holds a value the enum does not know.
    const COLUMN: &'static str;
    /// Every variant; `text` gives each one's stored form.
    const VARIANTS: &'static [Self];
    /// The stored form.
    fn text(self) -> &'static str;

    /// The variant stored as `raw`.
    fn from_text(raw: &str) -> Result<Self, UnknownValue> {
        Self::VARIANTS
            .iter()
            .copied()
            .find(|v| v.text() == raw)
            .ok_or_else(|| UnknownValue {
                column: Self::COLUMN,
                value: raw.to_owned(),
            })
    }
}

/// A stored value no variant of the column's enum has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column} holds an unknown value {value:?}")]
pub(crate) struct UnknownValue {
    pub column: &'static str,
    pub value: String,
}

/// `ToSql<Text, _>` and `FromSql<Text, _>` for a [`TextEnum`], for every backend that stores
/// text (SQLite, PostgreSQL and the `MultiBackend` of `DbConnection`). The enum derives
/// `diesel::AsExpression` and `diesel::FromSqlRow` with `#[diesel(sql_type = Text)]`.
macro_rules! text_enum_sql {
    ($ty:ty) => {
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                let text: &'static str = $crate::store::text_enum::TextEnum::text(*self);
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(text, out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                use diesel::deserialize::FromSql;
                use $crate::store::text_enum::TextEnum;
                let raw: String = FromSql::<diesel::sql_types::Text, DB>::from_sql(bytes)?;
                Ok(Self::from_text(&raw)?)
            }
        }
    };
}
pub(crate) use text_enum_sql;

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use zeroize::Zeroizing;

    use super::TextEnum;
    use crate::crypto::MasterKey;
    use crate::store::hermod::{
        CallbackStatus, CommandState, CommandType, KeyState, NewAttestationKey, NewCallback,
        NewCommand, NewDeviceKey, NewProfile, ProfileStatus, Transition, Usage,
    };
    use crate::store::schema::{device_keys, hermod_commands};
    use crate::store::{
        AuthenticatorStatus, InstanceStatus, MailStatus, NewAuthenticator, NewUser, OutgoingMail,
        RegistrationKind, RegistrationStatus, Store, StoreError,
    };
    use crate::types::{Domain, SerialNumber, UserId};

    fn round_trips<E: TextEnum + PartialEq + std::fmt::Debug>() {
        for v in E::VARIANTS {
            assert_eq!(E::from_text(v.text()), Ok(*v), "{}", E::COLUMN);
        }
        let err = E::from_text("no-such-value").unwrap_err();
        assert_eq!(err.column, E::COLUMN);
    }

    #[test]
    fn every_stored_enum_round_trips_and_names_its_column() {
        round_trips::<AuthenticatorStatus>();
        round_trips::<RegistrationKind>();
        round_trips::<RegistrationStatus>();
        round_trips::<InstanceStatus>();
        round_trips::<MailStatus>();
        round_trips::<CommandState>();
        round_trips::<CallbackStatus>();
        round_trips::<ProfileStatus>();
        round_trips::<CommandType>();
        round_trips::<Usage>();
        round_trips::<KeyState>();
    }

    /// The listing rows the CLI prints as JSON carry the enums: each serializes as its
    /// stored text, so `--json` shows what it showed when the rows held that text.
    #[test]
    fn listed_enums_serialize_as_their_stored_text() {
        fn same<E: TextEnum + serde::Serialize>() {
            for v in E::VARIANTS {
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::Value::from(v.text()),
                    "{}",
                    E::COLUMN
                );
            }
        }
        same::<MailStatus>();
        same::<CallbackStatus>();
        same::<InstanceStatus>();
        same::<ProfileStatus>();
    }

    /// Every variant of every stored enum goes through the database and back (bound as
    /// text, read as text), and a value no variant has is `Corrupt` naming the column.
    /// A value read back that no variant has: `Corrupt`, naming the column and the value.
    fn assert_corrupt<E: std::fmt::Debug>(read: Result<E, StoreError>, column: &str, value: &str) {
        match read {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.contains(column) && m.contains(value), "{m}")
            }
            other => panic!("{column}: {other:?}"),
        }
    }

    /// Every variant of each enum goes through the database and back (bound typed and read
    /// as text, bound as text and read typed), and a value no variant has is `Corrupt`
    /// naming the column.
    macro_rules! through_the_database {
        ($conn:expr; $($ty:ty),+ $(,)?) => {$(
            for &v in <$ty as TextEnum>::VARIANTS {
                let raw: String = diesel::select(v.into_sql::<Text>())
                    .get_result($conn)
                    .unwrap();
                assert_eq!(raw, v.text(), "{}", <$ty as TextEnum>::COLUMN);
                let back: $ty = diesel::select(raw.into_sql::<Text>())
                    .get_result($conn)
                    .unwrap();
                assert_eq!(back, v, "{}", <$ty as TextEnum>::COLUMN);
            }
            assert_corrupt(
                diesel::select("no-such-value".into_sql::<Text>())
                    .get_result::<$ty>($conn)
                    .map_err(StoreError::from),
                <$ty as TextEnum>::COLUMN,
                "no-such-value",
            );
        )+};
    }

    fn every_enum_through(conn: &mut crate::store::DbConnection) {
        through_the_database!(conn;
            AuthenticatorStatus,
            RegistrationKind,
            RegistrationStatus,
            InstanceStatus,
            MailStatus,
            CommandState,
            CommandType,
            CallbackStatus,
            ProfileStatus,
            Usage,
            KeyState,
        );
    }

    #[test]
    fn every_stored_enum_goes_through_sqlite_and_back() {
        let (s, _dir) = store("through");
        every_enum_through(&mut s.conn().unwrap());
    }

    #[cfg(feature = "postgres")]
    #[test]
    #[cfg_attr(
        not(provd_pg_tests),
        ignore = "PROVD_TEST_POSTGRES_URL is not set: the stored enums were NOT sent through PostgreSQL"
    )]
    fn every_stored_enum_goes_through_postgres_and_back() {
        use diesel::Connection;
        let url = std::env::var("PROVD_TEST_POSTGRES_URL")
            .expect("PROVD_TEST_POSTGRES_URL (set when this test was built)");
        let mut conn = crate::store::DbConnection::establish(&url).unwrap();
        assert!(matches!(conn, crate::store::DbConnection::Postgresql(_)));
        every_enum_through(&mut conn);
    }

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn store(name: &str) -> (Store, TempDir) {
        let dir = std::env::temp_dir().join(format!("provd-enum-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("e.db").display().to_string();
        (
            Store::open(&url, MasterKey::generate(), 2).unwrap(),
            TempDir(dir),
        )
    }

    /// A status the enum does not know, read back, is `StoreError::Corrupt` naming the
    /// column and the value; statuses are written as their text.
    #[test]
    fn an_unknown_stored_status_is_an_error_naming_its_column() {
        let (s, _dir) = store("unknown");
        let serial = SerialNumber::parse("ENU0000001").unwrap();
        s.insert_authenticators(
            &[NewAuthenticator {
                serial_no: serial.clone(),
                auth_type: "DIGIPASS APP".into(),
                applications: "RESPONSE_ONLY".into(),
                key: Zeroizing::new(vec![7; 32]),
                license_limit: 1,
            }],
            &mut |_| {},
        )
        .unwrap();
        s.enqueue_mail(
            &OutgoingMail {
                command: "TEST".into(),
                recipient: "a@example.test".into(),
                subject: "s".into(),
                body: Zeroizing::new("b".into()),
            },
            1,
        )
        .unwrap();
        // Written as text, read back typed.
        assert_eq!(
            s.get_authenticator(&serial).unwrap().status,
            AuthenticatorStatus::Available
        );
        assert_eq!(
            s.list_outbox(None, 10).unwrap()[0].status,
            MailStatus::Queued
        );
        assert_eq!(
            s.list_authenticators(Some(AuthenticatorStatus::Available))
                .unwrap()
                .len(),
            1
        );

        s.conn()
            .unwrap()
            .batch_execute(
                "UPDATE authenticators SET status = 'misplaced'; UPDATE outbox SET status = 'lost'",
            )
            .unwrap();
        match s.get_authenticator(&serial) {
            Err(StoreError::Corrupt(m)) => {
                assert!(
                    m.contains("authenticators.status") && m.contains("misplaced"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        match s.list_outbox(None, 10) {
            Err(StoreError::Corrupt(m)) => {
                assert!(m.contains("outbox.status") && m.contains("lost"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// A command's type and its keys' usage and state are written typed and read back typed;
    /// a value the enum does not know is `Corrupt` naming its column.
    #[test]
    fn hermod_command_type_and_key_columns_are_typed() {
        let (s, _dir) = store("hermod");
        let user = s
            .create_user(&NewUser {
                user_id: UserId::parse("enum").unwrap(),
                domain: Domain::parse("example.test").unwrap(),
                organizational_unit: None,
                email: None,
                password_hash: None,
            })
            .unwrap();
        s.add_hermod_client("c", &[1; 32], "https://cb.example.test/", "secret", 1)
            .unwrap();
        let attestation = s
            .upsert_attestation_key(
                &NewAttestationKey {
                    kid: "att",
                    thumbprint: "att-thumb",
                    public_jwk: "{}",
                    algs: "ES256",
                    jwk_kid: None,
                    not_before: None,
                    not_after: None,
                },
                1,
            )
            .unwrap();
        let id = s
            .create_hermod_command(&NewCommand {
                id: None,
                client_id: "c",
                external_id: None,
                command_type: CommandType::Prov,
                nonce: "n",
                user_pk: user.pk,
                request_json: "{}",
                bid: "b",
                mid: "m",
                token_sha256: &[2; 32],
                sealed_token: &[3; 8],
                box_id: "box",
                created_at: 1,
                timeout_at: 100,
                lifespan_at: 200,
            })
            .unwrap();
        let command = s.hermod_command(id).unwrap().unwrap();
        assert_eq!(command.command_type, CommandType::Prov);
        let key = |keyid: &str, usage, key_state| NewDeviceKey {
            keyid: keyid.into(),
            usage,
            kty: "EC".into(),
            alg: "ES256".into(),
            bits: 256,
            public_jwk: "{}".into(),
            thumbprint: format!("thumb-{keyid}"),
            key_state,
            certreq: None,
        };
        let profile = NewProfile {
            profile_id: "p".into(),
            name: "n".into(),
            servername: "s".into(),
            attestation_key_id: attestation.id,
            deviceinfo: None,
            keys: vec![
                key("k1", Usage::Sig, KeyState::Active),
                key("k2", Usage::Auth, KeyState::Inactive),
                key("k3", Usage::Enc, KeyState::Active),
            ],
        };
        let callback = NewCallback {
            url: "https://cb.example.test/".into(),
            body: "{}".into(),
        };
        assert_eq!(
            s.complete_hermod_command(&command, "jws", &profile, &callback, 2)
                .unwrap(),
            Transition::Done
        );
        let keys = |s: &Store| {
            device_keys::table
                .order(device_keys::keyid)
                .select((device_keys::usage, device_keys::key_state))
                .load::<(Usage, KeyState)>(&mut s.conn().unwrap())
                .map_err(StoreError::from)
        };
        assert_eq!(
            keys(&s).unwrap(),
            [
                (Usage::Sig, KeyState::Active),
                (Usage::Auth, KeyState::Inactive),
                (Usage::Enc, KeyState::Active)
            ]
        );
        // Written as the text a database of the previous version holds.
        let raw: Vec<(String, String)> = device_keys::table
            .order(device_keys::keyid)
            .select((device_keys::usage, device_keys::key_state))
            .load(&mut s.conn().unwrap())
            .unwrap();
        assert_eq!(raw[1], ("AUTH".to_owned(), "INACTIVE".to_owned()));
        let raw: String = hermod_commands::table
            .find(id)
            .select(hermod_commands::command_type)
            .first(&mut s.conn().unwrap())
            .unwrap();
        assert_eq!(raw, "PROV");

        let conn = || s.conn().unwrap();
        conn()
            .batch_execute("UPDATE hermod_commands SET command_type = 'ENROL'")
            .unwrap();
        assert_corrupt(
            s.hermod_command(id),
            "hermod_commands.command_type",
            "ENROL",
        );
        conn()
            .batch_execute("UPDATE device_keys SET usage = 'sig' WHERE keyid = 'k1'")
            .unwrap();
        assert_corrupt(keys(&s), "device_keys.usage", "sig");
        conn()
            .batch_execute(
                "UPDATE device_keys SET usage = 'SIG', key_state = 'DORMANT' WHERE keyid = 'k1'",
            )
            .unwrap();
        assert_corrupt(keys(&s), "device_keys.key_state", "DORMANT");
    }
}
