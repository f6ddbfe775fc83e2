//! Placeholder for the outbox (replaced by the e-mail delivery branch).

use super::{DbConnection, StoreError};
use crate::crypto::MasterKey;

pub struct OutgoingMail {
    pub command: String,
    pub recipient: String,
    pub subject: String,
    pub body: zeroize::Zeroizing<String>,
}

pub(crate) fn enqueue_mail(
    _c: &mut DbConnection,
    _key: &MasterKey,
    _mail: &OutgoingMail,
    _now: i64,
) -> Result<i64, StoreError> {
    Err(StoreError::Conflict(
        "e-mail delivery is not built yet".into(),
    ))
}
