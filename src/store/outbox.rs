//! The outbox: e-mail to deliver, written in the transaction that produced it and sent later
//! by the delivery worker (`crate::delivery`), so that a crash between commit and send loses
//! nothing (at-least-once). Bodies are sealed under the master key, bound to their recipient
//! and subject; nothing read back for listing carries a body.

use diesel::prelude::*;
use serde::Serialize;
use zeroize::Zeroizing;

use super::schema::outbox;
use super::text_enum::{text_enum_sql, TextEnum};
use super::{DbConnection, Store, StoreError};
use crate::crypto::MasterKey;

/// A message to queue. `command` names what produced it (for example
/// `PROVISIONCMD_REGISTER`), for the outbox listing.
pub struct OutgoingMail {
    pub command: String,
    pub recipient: String,
    pub subject: String,
    pub body: Zeroizing<String>,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("command", &self.command)
            .field("recipient", &self.recipient)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum MailStatus {
    /// Waiting to be sent (again, after a failed attempt).
    Queued,
    Sent,
    /// Given up after the configured number of attempts, or undeliverable.
    Failed,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl TextEnum for MailStatus {
    const COLUMN: &'static str = "outbox.status";
    const VARIANTS: &'static [Self] = &[Self::Queued, Self::Sent, Self::Failed];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(MailStatus);

/// A message leased to one sender: its body opened.
pub struct ClaimedMail {
    pub id: i64,
    pub command: String,
    pub recipient: String,
    pub subject: String,
    pub body: Zeroizing<String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

impl std::fmt::Debug for ClaimedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedMail")
            .field("id", &self.id)
            .field("command", &self.command)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// An outbox row as listed: everything but the body.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxEntry {
    pub id: i64,
    pub created_at: i64,
    pub command: String,
    pub recipient: String,
    pub subject: String,
    pub status: MailStatus,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// Whether `addr` is an address the delivery worker can send to (`local@domain`, no display
/// name). Producers check a destination with this before queueing, to answer a bad one as
/// invalid data.
pub fn is_mail_address(addr: &str) -> bool {
    addr.parse::<lettre::Address>().is_ok()
}

/// The sealing context of a body: recipient and subject, length-prefixed so that no two
/// pairs give the same string. A body copied to another row does not open there.
pub(super) fn body_context(recipient: &str, subject: &str) -> String {
    format!("outbox-body:{}:{recipient}:{subject}", recipient.len())
}

/// Recorded errors are kept short.
const MAX_ERROR_CHARS: usize = 500;

fn short_error(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// A new row of `outbox`: queued, due at once.
#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct OutboxInsert<'a> {
    created_at: i64,
    command: &'a str,
    recipient: &'a str,
    subject: &'a str,
    sealed_body: &'a [u8],
    status: MailStatus,
    attempts: i32,
    next_attempt_at: i64,
}

/// Queues `mail` on `c`. Meant to run inside the producer's own `write_tx` closure, so that
/// its rows and the message commit (or roll back) together; after the commit, poke the
/// delivery worker (`crate::delivery::MailNotifier::notify`). Returns the outbox id.
/// A recipient that is not a plain e-mail address, or a subject with a line break, is
/// refused (`StoreError::Corrupt`): check destinations with [`is_mail_address`] first.
pub(crate) fn enqueue_mail(
    c: &mut DbConnection,
    key: &MasterKey,
    mail: &OutgoingMail,
    now: i64,
) -> Result<i64, StoreError> {
    if !is_mail_address(&mail.recipient) {
        return Err(StoreError::Corrupt(
            "an outbox recipient is not an e-mail address".into(),
        ));
    }
    if mail.subject.contains(['\r', '\n']) {
        return Err(StoreError::Corrupt(
            "an outbox subject contains a line break".into(),
        ));
    }
    let sealed = key.seal(
        &body_context(&mail.recipient, &mail.subject),
        mail.body.as_bytes(),
    );
    Ok(diesel::insert_into(outbox::table)
        .values(OutboxInsert {
            created_at: now,
            command: &mail.command,
            recipient: &mail.recipient,
            subject: &mail.subject,
            sealed_body: &sealed,
            status: MailStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
        })
        .returning(outbox::id)
        .get_result(c)?)
}

/// Rows ready to be claimed at `now`: queued, due, and not leased by a live sender.
macro_rules! due_rows {
    ($now:expr) => {
        outbox::table
            .filter(outbox::status.eq(MailStatus::Queued))
            .filter(outbox::next_attempt_at.le($now))
            .filter(
                outbox::lease_until
                    .is_null()
                    .or(outbox::lease_until.lt($now)),
            )
    };
}

impl Store {
    /// Queues `mail` in a transaction of its own.
    pub fn enqueue_mail(&self, mail: &OutgoingMail, now: i64) -> Result<i64, StoreError> {
        self.write_tx(|c| enqueue_mail(c, self.key(), mail, now))
    }

    /// Leases up to `limit` due messages to the caller for `lease_secs` and counts an attempt
    /// on each. Each row is taken with a conditional update inside one transaction, so two
    /// senders (threads or instances sharing a database) never both claim a row; a sender
    /// that dies leaves its rows to be claimed again when the lease ends. A row whose body
    /// does not open (tampered, or another master key) is marked failed, not returned.
    pub fn claim_due_mail(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        let candidates: Vec<i64> = {
            let mut conn = self.conn()?;
            due_rows!(now)
                .order((outbox::next_attempt_at, outbox::id))
                .limit(limit)
                .select(outbox::id)
                .load(&mut conn)?
        };
        self.claim_leased(
            candidates,
            |c, id| {
                let taken = diesel::update(due_rows!(now).filter(outbox::id.eq(id)))
                    .set((
                        outbox::lease_until.eq(Some(now + lease_secs.max(1))),
                        outbox::attempts.eq(outbox::attempts + 1),
                    ))
                    .execute(c)?;
                Ok(taken == 1)
            },
            |c, id| {
                let (command, recipient, subject, sealed, attempts): (
                    String,
                    String,
                    String,
                    Vec<u8>,
                    i32,
                ) = outbox::table
                    .find(id)
                    .select((
                        outbox::command,
                        outbox::recipient,
                        outbox::subject,
                        outbox::sealed_body,
                        outbox::attempts,
                    ))
                    .first(c)?;
                let opened = self
                    .key()
                    .open(&body_context(&recipient, &subject), &sealed)
                    .ok()
                    .and_then(|b| String::from_utf8(b.to_vec()).ok());
                let Some(body) = opened else {
                    tracing::error!(mail_id = id, "an outbox body does not open; marked failed");
                    diesel::update(outbox::table.find(id))
                        .set((
                            outbox::status.eq(MailStatus::Failed),
                            outbox::lease_until.eq(None::<i64>),
                            outbox::last_error.eq(Some(
                                "the sealed body does not open (tampered row or another master key)",
                            )),
                        ))
                        .execute(c)?;
                    return Ok(None);
                };
                Ok(Some(ClaimedMail {
                    id,
                    command,
                    recipient,
                    subject,
                    body: Zeroizing::new(body),
                    attempts,
                }))
            },
        )
    }

    /// The claim step every outbox shares (mail here, Hermod's callbacks): the due ids
    /// `candidates` (read without a transaction, so an idle outbox costs no write) are taken
    /// in one transaction, in id order so that two claimers never deadlock. `take` is the
    /// conditional update that leases one row (false: another sender took it first); `load`
    /// reads the leased row and opens its secret (`None`: it was marked failed instead).
    pub(super) fn claim_leased<T>(
        &self,
        mut candidates: Vec<i64>,
        mut take: impl FnMut(&mut DbConnection, i64) -> Result<bool, StoreError>,
        mut load: impl FnMut(&mut DbConnection, i64) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        candidates.sort_unstable();
        self.write_tx(|c| {
            let mut claimed = Vec::new();
            for id in candidates {
                if take(c, id)? {
                    claimed.extend(load(c, id)?);
                }
            }
            Ok(claimed)
        })
    }

    pub fn mark_mail_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(outbox::table.find(id))
                .set((
                    outbox::status.eq(MailStatus::Sent),
                    outbox::sent_at.eq(Some(now)),
                    outbox::lease_until.eq(None::<i64>),
                    outbox::last_error.eq(None::<String>),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// A failed attempt to try again at `next_attempt_at`; the lease ends. `error` must not
    /// quote the body (it is listed by `provd outbox list`).
    pub fn mark_mail_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(
                outbox::table
                    .find(id)
                    .filter(outbox::status.eq(MailStatus::Queued)),
            )
            .set((
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::lease_until.eq(None::<i64>),
                outbox::last_error.eq(Some(short_error(error))),
            ))
            .execute(c)?;
            Ok(())
        })
    }

    /// Gives up on a message: it stays in the outbox as failed, with `error`.
    pub fn mark_mail_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(
                outbox::table
                    .find(id)
                    .filter(outbox::status.eq(MailStatus::Queued)),
            )
            .set((
                outbox::status.eq(MailStatus::Failed),
                outbox::lease_until.eq(None::<i64>),
                outbox::last_error.eq(Some(short_error(error))),
            ))
            .execute(c)?;
            Ok(())
        })
    }

    /// Hands a claimed message back unsent (the sender is stopping): the lease ends and the
    /// attempt counted by the claim is taken back.
    pub fn release_mail(&self, id: i64) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(
                outbox::table
                    .find(id)
                    .filter(outbox::status.eq(MailStatus::Queued))
                    .filter(outbox::attempts.gt(0)),
            )
            .set((
                outbox::lease_until.eq(None::<i64>),
                outbox::attempts.eq(outbox::attempts - 1),
            ))
            .execute(c)?;
            Ok(())
        })
    }

    /// The newest `limit` outbox rows (newest first), optionally of one status; no bodies.
    pub fn list_outbox(
        &self,
        status: Option<MailStatus>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = outbox::table
            .order(outbox::id.desc())
            .limit(limit)
            .select(OutboxEntry::as_select())
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(outbox::status.eq(s));
        }
        Ok(q.load(&mut conn)?)
    }

    /// Messages waiting to be sent.
    pub fn count_queued_mail(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        Ok(outbox::table
            .filter(outbox::status.eq(MailStatus::Queued))
            .count()
            .get_result(&mut conn)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn store(name: &str) -> (Store, TempDir, String) {
        let dir = std::env::temp_dir().join(format!("provd-outbox-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("o.db").display().to_string();
        let key = MasterKey::generate();
        (Store::open(&url, key, 4).unwrap(), TempDir(dir), url)
    }

    fn mail(to: &str, body: &str) -> OutgoingMail {
        OutgoingMail {
            command: "TEST".into(),
            recipient: to.into(),
            subject: "Your activation".into(),
            body: Zeroizing::new(body.into()),
        }
    }

    #[test]
    fn queue_claim_retry_send() {
        let (s, _dir, _) = store("flow");
        let id = s
            .enqueue_mail(&mail("a@example.test", "secret body"), 100)
            .unwrap();
        // Not due before its time; due at it.
        assert!(s.claim_due_mail(99, 60, 10).unwrap().is_empty());
        let got = s.claim_due_mail(100, 60, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, id);
        assert_eq!(got[0].body.as_str(), "secret body");
        assert_eq!(got[0].attempts, 1);
        // Leased: nobody else gets it until the lease ends.
        assert!(s.claim_due_mail(150, 60, 10).unwrap().is_empty());
        s.mark_mail_retry(id, "451 try later", 200).unwrap();
        assert!(s.claim_due_mail(199, 60, 10).unwrap().is_empty());
        let e = &s.list_outbox(None, 10).unwrap()[0];
        assert_eq!(
            (e.status.as_str(), e.attempts, e.next_attempt_at),
            ("queued", 1, 200)
        );
        assert_eq!(e.last_error.as_deref(), Some("451 try later"));
        let got = s.claim_due_mail(200, 60, 10).unwrap();
        assert_eq!(got[0].attempts, 2);
        s.mark_mail_sent(id, 201).unwrap();
        assert!(s.claim_due_mail(10_000, 60, 10).unwrap().is_empty());
        let e = &s.list_outbox(Some(MailStatus::Sent), 10).unwrap()[0];
        assert_eq!((e.sent_at, e.last_error.as_deref()), (Some(201), None));
        assert_eq!(s.count_queued_mail().unwrap(), 0);
        // A listing never shows the body.
        let listed = serde_json::to_string(&s.list_outbox(None, 10).unwrap()).unwrap();
        assert!(!listed.contains("secret body"));
    }

    #[test]
    fn an_expired_lease_is_claimed_again_and_a_release_undoes_the_attempt() {
        let (s, _dir, _) = store("lease");
        let id = s.enqueue_mail(&mail("a@example.test", "b"), 0).unwrap();
        assert_eq!(s.claim_due_mail(0, 10, 5).unwrap().len(), 1);
        assert!(s.claim_due_mail(10, 10, 5).unwrap().is_empty());
        // The sender died: after its lease the row is claimable again.
        let again = s.claim_due_mail(11, 10, 5).unwrap();
        assert_eq!((again[0].id, again[0].attempts), (id, 2));
        s.release_mail(id).unwrap();
        let e = &s.list_outbox(None, 1).unwrap()[0];
        assert_eq!((e.attempts, e.status.as_str()), (1, "queued"));
        assert_eq!(s.claim_due_mail(12, 10, 5).unwrap().len(), 1);
        s.mark_mail_failed(id, "gave up").unwrap();
        assert!(s.claim_due_mail(1000, 10, 5).unwrap().is_empty());
        assert_eq!(
            s.list_outbox(None, 1).unwrap()[0].status,
            MailStatus::Failed
        );
    }

    #[test]
    fn the_body_is_sealed_and_bound_to_recipient_and_subject() {
        let (s, _dir, _) = store("seal");
        let id = s
            .enqueue_mail(&mail("a@example.test", "top secret"), 0)
            .unwrap();
        let mut conn = s.conn().unwrap();
        let sealed: Vec<u8> = outbox::table
            .find(id)
            .select(outbox::sealed_body)
            .first(&mut conn)
            .unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"top secret"));
        // Redirecting the row to another recipient makes the body unreadable: the claim
        // marks it failed instead of sending it there.
        diesel::update(outbox::table.find(id))
            .set(outbox::recipient.eq("mallory@example.test"))
            .execute(&mut conn)
            .unwrap();
        drop(conn);
        assert!(s.claim_due_mail(0, 10, 5).unwrap().is_empty());
        assert_eq!(
            s.list_outbox(None, 1).unwrap()[0].status,
            MailStatus::Failed
        );
    }

    #[test]
    fn bad_recipients_and_subjects_are_refused() {
        let (s, _dir, _) = store("refuse");
        assert!(s.enqueue_mail(&mail("not an address", "b"), 0).is_err());
        assert!(s
            .enqueue_mail(&mail("Eve <e@example.test>", "b"), 0)
            .is_err());
        let mut m = mail("a@example.test", "b");
        m.subject = "x\r\nBcc: e@example.test".into();
        assert!(s.enqueue_mail(&m, 0).is_err());
        assert!(s.list_outbox(None, 10).unwrap().is_empty());
        assert!(is_mail_address("a@example.test"));
    }

    #[test]
    fn enqueue_commits_or_rolls_back_with_its_transaction() {
        let (s, _dir, _) = store("tx");
        let r: Result<(), StoreError> = s.write_tx(|c| {
            enqueue_mail(c, s.key(), &mail("a@example.test", "b"), 0)?;
            Err(StoreError::Conflict("the producer failed".into()))
        });
        assert!(r.is_err());
        assert!(s.list_outbox(None, 10).unwrap().is_empty());
        s.write_tx(|c| enqueue_mail(c, s.key(), &mail("a@example.test", "b"), 0))
            .unwrap();
        assert_eq!(s.count_queued_mail().unwrap(), 1);
    }

    /// Two stores on one file stand for two processes: each has its own write lock, so only
    /// the database keeps them apart.
    #[test]
    fn concurrent_claimers_never_share_a_row() {
        let (s, _dir, url) = store("race");
        let key = s.key().clone();
        const N: i64 = 60;
        for i in 0..N {
            s.enqueue_mail(&mail(&format!("u{i}@example.test"), "b"), 0)
                .unwrap();
        }
        let stores = [
            s.clone(),
            s,
            Store::open(&url, key.clone(), 4).unwrap(),
            Store::open(&url, key, 4).unwrap(),
        ];
        let seen: Vec<Vec<i64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .map(|st| {
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        // Stops when a claim comes back empty: every row is leased, or
                        // its candidates went to others (who then look again).
                        loop {
                            let got = st.claim_due_mail(1, 600, 3).unwrap();
                            if got.is_empty() {
                                break;
                            }
                            mine.extend(got.iter().map(|m| m.id));
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let all: Vec<i64> = seen.concat();
        let unique: HashSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len(), "a row was claimed twice");
        assert_eq!(all.len() as i64, N, "every row is claimed once");
    }
}
