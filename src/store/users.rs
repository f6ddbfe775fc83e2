use diesel::prelude::*;
use serde::Serialize;

use super::schema::users;
use super::{Store, StoreError};
use crate::types::{Domain, OrgUnit, UserId};

/// A user account. The password hash stays inside the store's callers; it is never serialized.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    #[serde(skip)]
    pub pk: i64,
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub email: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub has_password: bool,
    /// Locked by failed passwords; see [`User::locked_at`] for whether the lock still holds.
    pub locked: bool,
    pub failure_count: i32,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the lock ends; `None` with `locked`: until an administrator unlocks.
    pub locked_until: Option<i64>,
    /// Locks in a row (the lock duration grows with it); cleared by a right password.
    pub lock_count: i32,
    /// Disabled by an administrator: cannot register or activate.
    pub disabled: bool,
}

impl User {
    /// Whether the password lock holds at `now`.
    pub fn locked_at(&self, now: i64) -> bool {
        self.locked && self.locked_until.is_none_or(|until| until > now)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: i64,
    user_id: String,
    domain: String,
    organizational_unit: Option<String>,
    email: Option<String>,
    password_hash: Option<String>,
    locked: bool,
    failure_count: i32,
    created_at: i64,
    updated_at: i64,
    locked_until: Option<i64>,
    lock_count: i32,
    disabled: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str, e: crate::types::ParseError| {
            StoreError::Corrupt(format!("user {}: {what} {e}", r.id))
        };
        Ok(User {
            pk: r.id,
            user_id: UserId::parse(&r.user_id).map_err(|e| corrupt("user id", e))?,
            domain: Domain::parse(&r.domain).map_err(|e| corrupt("domain", e))?,
            organizational_unit: r
                .organizational_unit
                .as_deref()
                .map(OrgUnit::parse)
                .transpose()
                .map_err(|e| corrupt("organizational unit", e))?,
            email: r.email,
            has_password: r.password_hash.is_some(),
            password_hash: r.password_hash,
            locked: r.locked,
            failure_count: r.failure_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            locked_until: r.locked_until,
            lock_count: r.lock_count,
            disabled: r.disabled,
        })
    }
}

/// What `user add` creates. `password_hash` is an Argon2id PHC string, never a password.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
}

/// A new row of `users`: unlocked, no failures, created and updated at `created_at`.
#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
struct UserInsert<'a> {
    user_id: &'a str,
    domain: &'a str,
    organizational_unit: Option<&'a str>,
    email: Option<&'a str>,
    password_hash: Option<&'a str>,
    locked: bool,
    failure_count: i32,
    created_at: i64,
    updated_at: i64,
}

impl<'a> UserInsert<'a> {
    fn new(new: &'a NewUser, at: i64) -> Self {
        UserInsert {
            user_id: new.user_id.as_str(),
            domain: new.domain.as_str(),
            organizational_unit: new.organizational_unit.as_ref().map(|o| o.as_str()),
            email: new.email.as_deref(),
            password_hash: new.password_hash.as_deref(),
            locked: false,
            failure_count: 0,
            created_at: at,
            updated_at: at,
        }
    }
}

impl Store {
    pub fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        let t = self.now();
        self.write_tx(|c| {
            diesel::insert_into(users::table)
                .values(UserInsert::new(new, t))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "user {} already exists in domain {}",
                        new.user_id, new.domain
                    )),
                    other => other,
                })
        })?;
        self.find_user(&new.user_id, &new.domain)?
            .ok_or_else(|| StoreError::NotFound("user vanished after insert".into()))
    }

    pub fn find_user(&self, user_id: &UserId, domain: &Domain) -> Result<Option<User>, StoreError> {
        let mut conn = self.conn()?;
        users::table
            .filter(users::user_id.eq(user_id.as_str()))
            .filter(users::domain.eq(domain.as_str()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .optional()?
            .map(User::try_from)
            .transpose()
    }

    pub fn user_by_pk(&self, pk: i64) -> Result<User, StoreError> {
        let mut conn = self.conn()?;
        users::table
            .find(pk)
            .select(UserRow::as_select())
            .first(&mut conn)?
            .try_into()
    }

    /// Users, ordered by domain then user id; `domain` filters when given.
    pub fn list_users(&self, domain: Option<&Domain>) -> Result<Vec<User>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = users::table
            .select(UserRow::as_select())
            .order((users::domain, users::user_id))
            .into_boxed();
        if let Some(d) = domain {
            q = q.filter(users::domain.eq(d.as_str()));
        }
        q.load(&mut conn)?.into_iter().map(User::try_from).collect()
    }

    /// Runs `f` on the user's row (`f` gets the connection, the user's key and the store's
    /// time for `updated_at`); the user as it is afterwards.
    fn update_user<F>(&self, user_id: &UserId, domain: &Domain, f: F) -> Result<User, StoreError>
    where
        F: FnOnce(&mut super::DbConnection, i64, i64) -> QueryResult<usize>,
    {
        let user = self
            .find_user(user_id, domain)?
            .ok_or_else(|| StoreError::NotFound(format!("no user {user_id} in domain {domain}")))?;
        let t = self.now();
        self.write_tx(|c| Ok(f(c, user.pk, t)?))?;
        self.user_by_pk(user.pk)
    }

    /// Sets a new static-password hash and clears the failure count (an administrator's reset).
    pub fn set_password(
        &self,
        user_id: &UserId,
        domain: &Domain,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        self.update_user(user_id, domain, |conn, pk, t| {
            diesel::update(users::table.find(pk))
                .set((
                    users::password_hash.eq(password_hash),
                    users::failure_count.eq(0),
                    users::updated_at.eq(t),
                ))
                .execute(conn)
        })
    }

    pub fn unlock_user(&self, user_id: &UserId, domain: &Domain) -> Result<User, StoreError> {
        self.update_user(user_id, domain, |conn, pk, t| {
            diesel::update(users::table.find(pk))
                .set((
                    users::locked.eq(false),
                    users::failure_count.eq(0),
                    users::locked_until.eq(None::<i64>),
                    users::lock_count.eq(0),
                    users::updated_at.eq(t),
                ))
                .execute(conn)
        })
    }

    /// Disables or enables a user (an administrator's decision; independent of the lock).
    pub fn set_user_disabled(
        &self,
        user_id: &UserId,
        domain: &Domain,
        disabled: bool,
    ) -> Result<User, StoreError> {
        self.update_user(user_id, domain, |conn, pk, t| {
            diesel::update(users::table.find(pk))
                .set((users::disabled.eq(disabled), users::updated_at.eq(t)))
                .execute(conn)
        })
    }

    /// Deletes a user; their authenticators go back to the free pool, their registrations go.
    pub fn delete_user(&self, user_id: &UserId, domain: &Domain) -> Result<(), StoreError> {
        let user = self
            .find_user(user_id, domain)?
            .ok_or_else(|| StoreError::NotFound(format!("no user {user_id} in domain {domain}")))?;
        self.write_tx(|c| {
            use super::schema::{authenticators as a, registrations as r};
            diesel::delete(r::table.filter(r::user_pk.eq(user.pk))).execute(c)?;
            // Back in the pool, each with a new key: the user's devices hold the old one.
            let serials: Vec<String> = a::table
                .filter(a::user_pk.eq(user.pk))
                .select(a::serial_no)
                .load(c)?;
            for serial in serials {
                super::authenticators::retire(c, self, &serial)?;
            }
            diesel::delete(users::table.find(user.pk)).execute(c)?;
            Ok(())
        })
    }

    /// Counts a wrong static password at `at`; when the count reaches `lock_after` the user
    /// is locked, for `lock.duration_at(n)` seconds for the n-th lock in a row (`None`: until an
    /// administrator unlocks), and the count starts again. Returns whether the user is now
    /// locked. Single conditional UPDATEs, so concurrent failures on several instances all
    /// count and lock once.
    pub fn record_password_failure(
        &self,
        pk: i64,
        lock_after: i32,
        lock_duration: impl Fn(i32) -> Option<i64>,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.write_tx(|c| {
            diesel::update(users::table.find(pk))
                .set((
                    users::failure_count.eq(users::failure_count + 1),
                    users::updated_at.eq(at),
                ))
                .execute(c)?;
            let (failures, lock_count): (i32, i32) = users::table
                .find(pk)
                .select((users::failure_count, users::lock_count))
                .first(c)?;
            if failures < lock_after {
                return Ok(false);
            }
            let n = lock_count.saturating_add(1);
            diesel::update(users::table.find(pk))
                .set((
                    users::locked.eq(true),
                    users::failure_count.eq(0),
                    users::lock_count.eq(n),
                    users::locked_until.eq(lock_duration(n).map(|d| at.saturating_add(d))),
                ))
                .execute(c)?;
            Ok(true)
        })
    }

    /// A right password: the failure count, an expired lock and the run of locks end.
    pub fn clear_password_failures(&self, pk: i64) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(users::table.find(pk))
                .set((
                    users::failure_count.eq(0),
                    users::lock_count.eq(0),
                    users::locked.eq(false),
                    users::locked_until.eq(None::<i64>),
                ))
                .execute(c)?;
            Ok(())
        })
    }
}

impl Store {
    /// Inserts `batch` in one transaction (all or nothing), in multi-row statements of a few
    /// hundred rows; `progress` is told the rows written so far. A user that already exists
    /// fails the whole batch, naming it.
    pub fn import_users(
        &self,
        batch: &[NewUser],
        progress: &mut dyn FnMut(usize),
    ) -> Result<(), StoreError> {
        // 9 columns a row: 500 rows stay below SQLite's 32766 bound parameters.
        const CHUNK: usize = 500;
        let t = self.now();
        self.write_tx(|c| {
            let mut done = 0;
            for chunk in batch.chunks(CHUNK) {
                let rows: Vec<_> = chunk.iter().map(|new| UserInsert::new(new, t)).collect();
                // Multi-row INSERTs are backend-specific in diesel: one arm per backend.
                let written = match c {
                    #[cfg(feature = "sqlite")]
                    super::DbConnection::Sqlite(c) => {
                        diesel::insert_into(users::table).values(rows).execute(c)
                    }
                    #[cfg(feature = "postgres")]
                    super::DbConnection::Postgresql(c) => {
                        diesel::insert_into(users::table).values(rows).execute(c)
                    }
                };
                written.map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "a user of records {}..{} already exists",
                        done + 1,
                        done + chunk.len()
                    )),
                    other => other,
                })?;
                done += chunk.len();
                progress(done);
            }
            Ok(())
        })
    }

    /// The (user id, domain) pairs of every user.
    pub fn user_keys(&self) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        let mut conn = self.conn()?;
        let all: Vec<(String, String)> = users::table
            .select((users::user_id, users::domain))
            .load(&mut conn)?;
        Ok(all.into_iter().collect())
    }
}
