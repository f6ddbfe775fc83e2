use diesel::prelude::*;
use serde::Serialize;

use super::schema::audit_log;
use super::{Store, StoreError};

/// One audit row to write: who called what, and how it ended. Never a secret: the fields are
/// identifiers and outcome codes only.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub client_addr: Option<String>,
    pub command: String,
    pub user_id: Option<String>,
    pub domain: Option<String>,
    pub serial_no: Option<String>,
    pub registration_id: Option<String>,
    pub status: String,
    pub return_code: i32,
    pub status_code: i32,
    pub detail: Option<String>,
}

/// A new row of `audit_log`.
#[derive(Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
struct AuditInsert<'a> {
    at: i64,
    client_addr: Option<&'a str>,
    command: &'a str,
    user_id: Option<&'a str>,
    domain: Option<&'a str>,
    serial_no: Option<&'a str>,
    registration_id: Option<&'a str>,
    status: &'a str,
    return_code: i32,
    status_code: i32,
    detail: Option<&'a str>,
    occurrences: i32,
}

/// An audit row as read back.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub client_addr: Option<String>,
    pub command: String,
    pub user_id: Option<String>,
    pub domain: Option<String>,
    pub serial_no: Option<String>,
    pub registration_id: Option<String>,
    pub status: String,
    pub return_code: i32,
    pub status_code: i32,
    pub detail: Option<String>,
    /// How many calls the row stands for (rate-limited refusals are aggregated).
    pub occurrences: i32,
}

impl Store {
    pub fn audit(&self, e: &NewAudit) -> Result<(), StoreError> {
        self.audit_at(e, self.now()).map(|_| ())
    }

    /// Writes one audit row dated `at` (Unix seconds); its id.
    pub fn audit_at(&self, e: &NewAudit, at: i64) -> Result<i64, StoreError> {
        self.audit_row(e, at, 1)
    }

    /// Writes one row standing for `occurrences` calls like `e`; its id.
    pub fn audit_aggregated(&self, e: &NewAudit, occurrences: i32) -> Result<i64, StoreError> {
        self.audit_row(e, self.now(), occurrences)
    }

    /// Adds `n` calls to the row `id`.
    pub fn add_audit_occurrences(&self, id: i64, n: i32) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(audit_log::table.filter(audit_log::id.eq(id)))
                .set(audit_log::occurrences.eq(audit_log::occurrences + n))
                .execute(c)?;
            Ok(())
        })
    }

    /// Deletes the audit rows older than `before` (Unix seconds); how many.
    pub fn purge_audit(&self, before: i64) -> Result<usize, StoreError> {
        self.write_tx(|c| {
            Ok(diesel::delete(audit_log::table.filter(audit_log::at.lt(before))).execute(c)?)
        })
    }

    fn audit_row(&self, e: &NewAudit, at: i64, occurrences: i32) -> Result<i64, StoreError> {
        self.write_tx(|c| {
            Ok(diesel::insert_into(audit_log::table)
                .values(AuditInsert {
                    at,
                    client_addr: e.client_addr.as_deref(),
                    command: &e.command,
                    user_id: e.user_id.as_deref(),
                    domain: e.domain.as_deref(),
                    serial_no: e.serial_no.as_deref(),
                    registration_id: e.registration_id.as_deref(),
                    status: &e.status,
                    return_code: e.return_code,
                    status_code: e.status_code,
                    detail: e.detail.as_deref(),
                    occurrences,
                })
                .returning(audit_log::id)
                .get_result(c)?)
        })
    }

    /// The newest `limit` audit rows, newest first.
    pub fn recent_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let mut conn = self.conn()?;
        Ok(audit_log::table
            .order(audit_log::id.desc())
            .limit(limit)
            .select(AuditRecord::as_select())
            .load(&mut conn)?)
    }
}

/// Which audit rows to read: every set field must match; times are Unix seconds, inclusive.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub domain: Option<String>,
    pub serial_no: Option<String>,
    pub command: Option<String>,
    pub status: Option<String>,
    /// The caller: a client address, or `cli:<os user>` for an admin command.
    pub client: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// At most this many rows (newest first); `None`: all.
    pub limit: Option<i64>,
}

impl Store {
    /// The audit rows matching `f`, newest first.
    pub fn query_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = audit_log::table
            .order(audit_log::id.desc())
            .select(AuditRecord::as_select())
            .into_boxed();
        if let Some(v) = &f.user_id {
            q = q.filter(audit_log::user_id.eq(v));
        }
        if let Some(v) = &f.domain {
            q = q.filter(audit_log::domain.eq(v));
        }
        if let Some(v) = &f.serial_no {
            q = q.filter(audit_log::serial_no.eq(v));
        }
        if let Some(v) = &f.command {
            q = q.filter(audit_log::command.eq(v));
        }
        if let Some(v) = &f.status {
            q = q.filter(audit_log::status.eq(v));
        }
        if let Some(v) = &f.client {
            q = q.filter(audit_log::client_addr.eq(v));
        }
        if let Some(v) = f.since {
            q = q.filter(audit_log::at.ge(v));
        }
        if let Some(v) = f.until {
            q = q.filter(audit_log::at.le(v));
        }
        if let Some(n) = f.limit {
            q = q.limit(n);
        }
        Ok(q.load(&mut conn)?)
    }
}
