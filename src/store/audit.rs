use diesel::prelude::*;
use serde::Serialize;

use super::schema::audit_log;
use super::{now, Store, StoreError};

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
}

impl Store {
    pub fn audit(&self, e: &NewAudit) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::insert_into(audit_log::table)
                .values((
                    audit_log::at.eq(now()),
                    audit_log::client_addr.eq(e.client_addr.as_deref()),
                    audit_log::command.eq(&e.command),
                    audit_log::user_id.eq(e.user_id.as_deref()),
                    audit_log::domain.eq(e.domain.as_deref()),
                    audit_log::serial_no.eq(e.serial_no.as_deref()),
                    audit_log::registration_id.eq(e.registration_id.as_deref()),
                    audit_log::status.eq(&e.status),
                    audit_log::return_code.eq(e.return_code),
                    audit_log::status_code.eq(e.status_code),
                    audit_log::detail.eq(e.detail.as_deref()),
                ))
                .execute(c)?;
            Ok(())
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
