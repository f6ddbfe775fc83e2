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
    use zeroize::Zeroizing;

    use super::TextEnum;
    use crate::crypto::MasterKey;
    use crate::store::hermod::{CallbackStatus, CommandState, ProfileStatus};
    use crate::store::{
        AuthenticatorStatus, InstanceStatus, MailStatus, NewAuthenticator, OutgoingMail,
        RegistrationKind, RegistrationStatus, Store, StoreError,
    };
    use crate::types::SerialNumber;

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
        assert_eq!(s.list_outbox(None, 10).unwrap()[0].status, "queued");
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
}
