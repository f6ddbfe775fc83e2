//! `provd backup`: a consistent copy of a SQLite store while the server runs.

use std::path::Path;

use diesel::connection::SimpleConnection;

use super::{Backend, Store, StoreError};

impl Store {
    /// SQLite: writes a consistent, compacted copy of the database to `to` with
    /// `VACUUM INTO` (readers and writers carry on meanwhile). `to` must not exist.
    /// PostgreSQL has no in-process backup: the caller prints the `pg_dump` command instead.
    pub fn backup_sqlite(&self, to: &Path) -> Result<(), StoreError> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::Unavailable(
                "online backup is for SQLite stores; use pg_dump for PostgreSQL".into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Conflict(format!(
                "{} exists already; choose a new file",
                to.display()
            )));
        }
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Unavailable("the backup path is not UTF-8".into()))?;
        let mut conn = self.conn()?;
        conn.batch_execute(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))?;
        Ok(())
    }
}
