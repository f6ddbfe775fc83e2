//! Storage: diesel 2 over SQLite (embedded default) or PostgreSQL (scale-out), one schema and
//! one set of queries for both. Everything above this module sees typed records and
//! `StoreError`, never SQL. Calls here block: async callers run them on a blocking thread.

mod audit;
mod authenticators;
mod backup;
mod clock;
mod devices;
mod dsapp_exchanges;
mod health;
pub mod hermod;
mod keys;
mod outbox;
mod registrations;
pub mod schema;
#[cfg(test)]
mod schema_check;
mod text_enum;
mod users;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use thiserror::Error;

use crate::crypto::{CryptoError, MasterKey};

pub(crate) use text_enum::TextEnum;

pub use audit::{AuditFilter, AuditRecord, NewAudit};
pub use authenticators::{
    Assignment, Authenticator, AuthenticatorStatus, NewAuthenticator, DEFAULT_APPLICATIONS,
    DEFAULT_TYPE,
};
pub use authenticators::{Blocked, ReactivationRule, StandardRegistration};
pub use clock::{system_clock, Clock};
pub use devices::{
    Added, DeviceInstance, InstanceStatus, MdlLicense, NewInstance, PendingInstance,
};
pub use dsapp_exchanges::ExchangeRecorded;
pub use keys::{KeyCheck, RowKey, SealedColumn, SEALED_COLUMNS};
// For the commands that queue mail inside their own transaction.
#[allow(unused_imports)]
pub(crate) use outbox::enqueue_mail;
pub use outbox::{is_mail_address, ClaimedMail, MailStatus, OutboxEntry, OutgoingMail};
pub use registrations::{
    Begun, NewRegistration, Registration, RegistrationKind, RegistrationStatus,
};
pub use users::{NewUser, User};

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!(
    "provd needs at least one storage backend: enable the `sqlite` or `postgres` feature"
);

#[cfg(feature = "sqlite")]
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to whichever backend the URL selected. The variants follow the enabled cargo
/// features (`sqlite`, `postgres`); the queries are written once, against this type.
#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
}

#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(DieselError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("a stored value is invalid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// `Ok` when an update or delete touched a row; otherwise `NotFound(what())`.
pub(crate) fn touched(rows: usize, what: impl FnOnce() -> String) -> Result<(), StoreError> {
    if rows == 0 {
        return Err(StoreError::NotFound(what()));
    }
    Ok(())
}

impl StoreError {
    /// What was not found, when that is the error.
    pub fn not_found(&self) -> Option<&str> {
        match self {
            StoreError::NotFound(what) => Some(what),
            _ => None,
        }
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(info.message().to_owned())
            }
            DieselError::NotFound => StoreError::NotFound("record".into()),
            // A stored value its Rust type does not accept (a status no enum variant has):
            // the message names the column.
            DieselError::DeserializationError(e) => {
                // A `Selectable` row wraps the value's error in one naming the field.
                let mut message = e.to_string();
                let mut source = e.source();
                while let Some(inner) = source {
                    message.push_str(": ");
                    message.push_str(&inner.to_string());
                    source = inner.source();
                }
                StoreError::Corrupt(message)
            }
            other => StoreError::Query(other),
        }
    }
}

impl From<r2d2::PoolError> for StoreError {
    fn from(e: r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// `postgres://` or `postgresql://` selects PostgreSQL; anything else is a SQLite path
    /// (an optional `sqlite://` prefix is stripped).
    pub fn from_url(url: &str) -> (Self, String) {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            (Backend::Sqlite, path.to_owned())
        }
    }
}

/// Opens connections of exactly the backend the URL names: a PostgreSQL URL that cannot be
/// reached is an error, never a SQLite file created under that name.
#[derive(Debug)]
pub(crate) struct Manager {
    backend: Backend,
    url: String,
}

/// Per connection; the busy timeout comes first so that nothing after it fails on a lock.
/// The journal mode is persistent in the database file and set once, in `Store::connect`.
/// No memory mapping (`mmap_size = 0`, and no WAL, whose `-shm` index is mapped): a write to
/// mapped memory whose file has become unwritable (immutable, file system shut down) kills
/// the process with SIGBUS, where a `write` returns an error provd can answer with.
#[cfg(feature = "sqlite")]
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
     PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 0;";

/// The rollback journal, truncated after each commit (no directory update per transaction;
/// the next transaction allocates it again, so a full disk fails the next write, probe
/// included). Not WAL: see [`SQLITE_PRAGMAS`].
#[cfg(feature = "sqlite")]
const SQLITE_JOURNAL_MODE: &str = "truncate";

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        match self.backend {
            #[cfg(feature = "postgres")]
            Backend::Postgres => PgConnection::establish(&self.url).map(DbConnection::Postgresql),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.url)?;
                conn.batch_execute(SQLITE_PRAGMAS)
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConnection::Sqlite(conn))
            }
            #[allow(unreachable_patterns)]
            other => Err(ConnectionError::BadConnection(format!(
                "this provd was built without the `{}` cargo feature",
                other.feature()
            ))),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    /// A connection left inside a transaction, or whose transaction manager failed (a
    /// rollback that did not go through), is dropped instead of returned to the pool: `is_valid`
    /// would pass it on a live socket, and every later transaction on it would fail. As
    /// diesel's own r2d2 manager does.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        r2d2::R2D2Connection::is_broken(conn)
    }
}

type Conn = PooledConnection<Manager>;

/// The store: a connection pool plus the master key that seals secrets at rest, and the
/// clock its own time stamps come from (the system's unless [`Store::with_clock`]).
#[derive(Clone)]
pub struct Store {
    pool: Pool<Manager>,
    key: Arc<MasterKey>,
    backend: Backend,
    clock: Clock,
    /// SQLite allows one writer; write transactions of this process queue here instead of
    /// failing with SQLITE_BUSY on a lock upgrade. `None` on PostgreSQL.
    sqlite_writes: Option<Arc<Mutex<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, and applies pending migrations.
    pub fn open(url: &str, key: MasterKey, pool_size: u32) -> Result<Self, StoreError> {
        let store = Self::connect(url, key, pool_size)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects without touching the schema.
    pub fn connect(url: &str, key: MasterKey, pool_size: u32) -> Result<Self, StoreError> {
        let (backend, url) = Backend::from_url(url);
        // PostgreSQL: one direct connection first, so that a database that does not exist (or
        // a server that refuses) is one clear error at once, not the pool's retries for 10 s.
        #[cfg(feature = "postgres")]
        if backend == Backend::Postgres {
            PgConnection::establish(&url).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL: {}",
                    e.to_string().trim()
                ))
            })?;
        }
        let manager = Manager { backend, url };
        #[cfg(feature = "sqlite")]
        if backend == Backend::Sqlite {
            // Before the pool opens its connections: leaving WAL needs the only connection.
            set_journal_mode(&manager)?;
        }
        let pool = Pool::builder()
            .max_size(pool_size.max(1))
            .connection_timeout(Duration::from_secs(10))
            // Every checkout runs `is_valid` first: after the database restarts, the pooled
            // connections to the old server are dropped there and replaced, instead of being
            // handed out, failing, and returned to fail again (tests/pg_restart.rs). This is
            // r2d2's default; it is spelled out because recovery depends on it.
            .test_on_check_out(true)
            .build(manager)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let store = Store {
            pool,
            key: Arc::new(key),
            backend,
            clock: system_clock(),
            sqlite_writes: (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(()))),
        };
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.key
    }

    pub(crate) fn conn(&self) -> Result<Conn, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` in one write transaction: all of it commits or none of it does. Every write
    /// of the store goes through here. On SQLite the transaction is `BEGIN IMMEDIATE`: it
    /// takes the write lock up front (waiting up to the busy timeout) instead of upgrading a
    /// read snapshot later, which fails at once when another connection wrote in between.
    pub(crate) fn write_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    {
        let _guard = self
            .sqlite_writes
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let mut conn = self.conn()?;
        if self.backend == Backend::Postgres {
            return (*conn).transaction(f);
        }
        conn.batch_execute("BEGIN IMMEDIATE")?;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn)));
        match outcome {
            Ok(Ok(value)) => match conn.batch_execute("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(e.into())
                }
            },
            Ok(Err(e)) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e)
            }
            Err(panic) => {
                let _ = conn.batch_execute("ROLLBACK");
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Applies pending migrations; on PostgreSQL under an advisory lock, so that instances
    /// starting together do not race.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            #[cfg(feature = "sqlite")]
            DbConnection::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.len())
                .map_err(|e| StoreError::Migration(e.to_string()))?,
            #[cfg(feature = "postgres")]
            DbConnection::Postgresql(c) => {
                c.batch_execute("SELECT pg_advisory_lock(717273)")?;
                let result = c
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(|e| StoreError::Migration(e.to_string()));
                c.batch_execute("SELECT pg_advisory_unlock(717273)")?;
                result?
            }
        };
        Ok(applied)
    }

    /// A cheap round trip, for health checks.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.batch_execute("SELECT 1")?;
        Ok(())
    }
}

/// Sets [`SQLITE_JOURNAL_MODE`] on a connection of its own. A database still in WAL mode
/// (from an earlier version) is switched when no other process has it open; otherwise it
/// stays in WAL, with a warning.
#[cfg(feature = "sqlite")]
fn set_journal_mode(manager: &Manager) -> Result<(), StoreError> {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mut conn = manager
        .connect()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let mode: Result<Mode, _> =
        diesel::sql_query(format!("PRAGMA journal_mode = {SQLITE_JOURNAL_MODE}"))
            .get_result(&mut conn);
    match mode {
        Ok(m) if m.journal_mode.eq_ignore_ascii_case(SQLITE_JOURNAL_MODE) => {}
        Ok(m) => {
            tracing::warn!(mode = %m.journal_mode, "the SQLite database stays in this journal mode while another process has it open")
        }
        Err(e) => {
            tracing::warn!(error = %e, "the SQLite journal mode could not be set; another process has the database open")
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::{Connection, TransactionManager};

    type Tm = <DbConnection as Connection>::TransactionManager;

    #[test]
    fn a_connection_left_in_a_transaction_does_not_go_back_to_the_pool() {
        let manager = Manager {
            backend: Backend::Sqlite,
            url: ":memory:".into(),
        };
        let mut conn = manager.connect().unwrap();
        assert!(!manager.has_broken(&mut conn));
        Tm::begin_transaction(&mut conn).unwrap();
        assert!(manager.has_broken(&mut conn));
        Tm::commit_transaction(&mut conn).unwrap();
        assert!(!manager.has_broken(&mut conn));
    }
}
