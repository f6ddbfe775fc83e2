//! The master key's place in the database: its check value, the one list of every column
//! sealed under it, and key rotation (every sealed value re-sealed in one transaction).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};

use super::schema::key_check;
use super::{authenticators, devices, hermod, outbox, registrations};
use super::{DbConnection, Store, StoreError};
use crate::crypto::MasterKey;

/// The context and plaintext of the key check value: a constant, so that the check value
/// opens under exactly the key that sealed it and says nothing else.
const CHECK_CONTEXT: &str = "provd-master-key-check";
const CHECK_PLAINTEXT: &[u8] = b"provd master key check v1";

/// How the rows of a sealed column are found again for their update.
#[derive(Debug, Clone, Copy)]
pub enum RowKey {
    /// A text primary key.
    Text(&'static str),
    /// An integer primary key.
    Int(&'static str),
}

/// One column whose values are sealed under the master key.
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    pub key: RowKey,
    /// The text columns the sealing context is built from, in order (at most three).
    pub parts: &'static [&'static str],
    /// The sealing context from those columns' values, exactly as the code that seals the
    /// column builds it.
    pub context: fn(&[&str]) -> String,
}

/// Every sealed column. `provd key rotate`, the key check of a database from before the check
/// value existed, and the tests go through this list: a new sealed column is one line here.
#[rustfmt::skip]
pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn { table: "authenticators", column: "sealed_key", key: RowKey::Text("serial_no"), parts: &["serial_no"], context: |p| authenticators::sealing_context(p[0]) },
    SealedColumn { table: "authenticators", column: "sealed_license_key", key: RowKey::Text("serial_no"), parts: &["serial_no"], context: |p| devices::license_context(p[0]) },
    SealedColumn { table: "device_instances", column: "sealed_instance_key", key: RowKey::Int("id"), parts: &["serial_no", "device_id"], context: |p| devices::instance_context(p[0], p[1]) },
    SealedColumn { table: "registrations", column: "sealed_secret", key: RowKey::Text("registration_id"), parts: &["registration_id"], context: |p| registrations::secret_context(p[0]) },
    SealedColumn { table: "registrations", column: "srp_verifier", key: RowKey::Text("registration_id"), parts: &["registration_id"], context: |p| registrations::verifier_context(p[0]) },
    SealedColumn { table: "registrations", column: "sealed_new_key", key: RowKey::Text("registration_id"), parts: &["registration_id"], context: |p| registrations::new_key_context(p[0]) },
    SealedColumn { table: "registrations", column: "sealed_ephemeral", key: RowKey::Text("registration_id"), parts: &["registration_id"], context: |p| registrations::ephemeral_context(p[0]) },
    SealedColumn { table: "hermod_clients", column: "sealed_callback_secret", key: RowKey::Text("client_id"), parts: &["client_id"], context: |p| hermod::secret_context(p[0]) },
    SealedColumn { table: "hermod_commands", column: "sealed_token", key: RowKey::Int("id"), parts: &["bid"], context: |p| hermod::token_context(p[0]) },
    SealedColumn { table: "outbox", column: "sealed_body", key: RowKey::Int("id"), parts: &["recipient", "subject"], context: |p| outbox::body_context(p[0], p[1]) },
];

/// What the database says about a master key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The database's check value opens under the key.
    Matches,
    /// The check value, or (without one) a sealed value, does not open under the key.
    WrongKey,
    /// No check value yet. `sealed_data`: the database holds sealed values (one of each
    /// sealed column opened under the key).
    Unrecorded { sealed_data: bool },
}

/// The one row of `key_check`.
#[derive(Insertable)]
#[diesel(table_name = key_check)]
struct KeyCheckRow<'a> {
    id: i32,
    sealed_check: &'a [u8],
    created_at: i64,
}

#[derive(QueryableByName)]
struct SealedRow {
    #[diesel(sql_type = Text)]
    row_key: String,
    #[diesel(sql_type = Nullable<Text>)]
    p0: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    p1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    p2: Option<String>,
    #[diesel(sql_type = Binary)]
    sealed: Vec<u8>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl SealedColumn {
    fn key_column(&self) -> &'static str {
        match self.key {
            RowKey::Text(c) | RowKey::Int(c) => c,
        }
    }

    /// `SELECT` of the row key, the context parts and the sealed value of every row that
    /// holds one (`LIMIT 1` with `first`).
    fn select_sql(&self, first: bool) -> String {
        let part = |i: usize| {
            self.parts
                .get(i)
                .map_or("NULL".to_owned(), |c| c.to_string())
        };
        format!(
            "SELECT CAST({key} AS TEXT) AS row_key, {p0} AS p0, {p1} AS p1, {p2} AS p2, \
             {col} AS sealed FROM {table} WHERE {col} IS NOT NULL AND LENGTH({col}) > 0 ORDER BY {key}{limit}",
            key = self.key_column(),
            p0 = part(0),
            p1 = part(1),
            p2 = part(2),
            col = self.column,
            table = self.table,
            limit = if first { " LIMIT 1" } else { "" },
        )
    }

    fn context_of(&self, row: &SealedRow) -> Result<String, StoreError> {
        let parts: Vec<&str> = [&row.p0, &row.p1, &row.p2]
            .iter()
            .take(self.parts.len())
            .map(|p| p.as_deref())
            .collect::<Option<_>>()
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{}.{} of row {} is sealed but its context columns are empty",
                    self.table, self.column, row.row_key
                ))
            })?;
        Ok((self.context)(&parts))
    }
}

fn placeholders(conn: &DbConnection) -> (&'static str, &'static str) {
    match conn {
        #[cfg(feature = "sqlite")]
        DbConnection::Sqlite(_) => ("?", "?"),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(_) => ("$1", "$2"),
    }
}

impl Store {
    /// How many sealed values the database holds, over every sealed column.
    pub fn sealed_value_count(&self) -> Result<u64, StoreError> {
        Ok(self.sealed_value_counts()?.iter().map(|(_, n)| n).sum())
    }

    /// How many sealed values each sealed column holds, as `table.column`.
    pub fn sealed_value_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut conn = self.conn()?;
        let mut counts = Vec::new();
        for col in SEALED_COLUMNS {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {t} WHERE {c} IS NOT NULL AND LENGTH({c}) > 0",
                t = col.table,
                c = col.column
            );
            let c: Count = diesel::sql_query(sql).get_result(&mut *conn)?;
            counts.push((format!("{}.{}", col.table, col.column), c.n as u64));
        }
        Ok(counts)
    }

    /// How many of the sealed values open under the store's key, of how many there are.
    pub fn sealed_values_opening(&self) -> Result<(u64, u64), StoreError> {
        let mut conn = self.conn()?;
        let (mut opening, mut total) = (0u64, 0u64);
        for col in SEALED_COLUMNS {
            let rows: Vec<SealedRow> = diesel::sql_query(col.select_sql(false)).load(&mut *conn)?;
            for row in rows {
                total += 1;
                let context = col.context_of(&row)?;
                if self.key().open(&context, &row.sealed).is_ok() {
                    opening += 1;
                }
            }
        }
        Ok((opening, total))
    }

    /// Checks the store's key against the database.
    pub fn key_check(&self) -> Result<KeyCheck, StoreError> {
        let mut conn = self.conn()?;
        let recorded: Option<Vec<u8>> = key_check::table
            .filter(key_check::id.eq(1))
            .select(key_check::sealed_check)
            .first(&mut *conn)
            .optional()?;
        if let Some(sealed) = recorded {
            return Ok(match self.key().open(CHECK_CONTEXT, &sealed) {
                Ok(plain) if plain.as_slice() == CHECK_PLAINTEXT => KeyCheck::Matches,
                _ => KeyCheck::WrongKey,
            });
        }
        let mut sealed_data = false;
        for col in SEALED_COLUMNS {
            let rows: Vec<SealedRow> = diesel::sql_query(col.select_sql(true)).load(&mut *conn)?;
            if let Some(row) = rows.first() {
                sealed_data = true;
                if self.key().open(&col.context_of(row)?, &row.sealed).is_err() {
                    return Ok(KeyCheck::WrongKey);
                }
            }
        }
        Ok(KeyCheck::Unrecorded { sealed_data })
    }

    /// Records the check value of the store's key, if none is recorded yet (a concurrent
    /// first start of another instance may have recorded it: `key_check` tells).
    pub fn record_key_check(&self) -> Result<(), StoreError> {
        let sealed = self.key().seal(CHECK_CONTEXT, CHECK_PLAINTEXT);
        let recorded = self.write_tx(|c| {
            let exists: i64 = key_check::table
                .filter(key_check::id.eq(1))
                .count()
                .get_result(c)?;
            if exists == 0 {
                diesel::insert_into(key_check::table)
                    .values(KeyCheckRow {
                        id: 1,
                        sealed_check: &sealed,
                        created_at: self.now(),
                    })
                    .execute(c)?;
            }
            Ok(())
        });
        match recorded {
            // Another instance starting on the same new database recorded its key first.
            Err(StoreError::Conflict(_)) => Ok(()),
            other => other,
        }
    }

    /// Re-seals every sealed value, and the key check value, under `new`, in one transaction:
    /// afterwards only `new` opens the database. A value that does not open under the
    /// current key aborts the rotation with nothing changed. `progress` is called after each
    /// value with the number done so far. Returns the number of values re-sealed.
    pub fn rotate_key(&self, new: &MasterKey, progress: &dyn Fn(u64)) -> Result<u64, StoreError> {
        if self.key_check()? == KeyCheck::WrongKey {
            return Err(StoreError::Crypto(crate::crypto::CryptoError::Unseal));
        }
        let old = self.key();
        self.write_tx(|c| {
            let mut done = 0u64;
            let (p1, p2) = placeholders(c);
            for col in SEALED_COLUMNS {
                let rows: Vec<SealedRow> = diesel::sql_query(col.select_sql(false)).load(c)?;
                let update = format!(
                    "UPDATE {} SET {} = {p1} WHERE {} = {p2}",
                    col.table,
                    col.column,
                    col.key_column()
                );
                for row in rows {
                    let context = col.context_of(&row)?;
                    let plain = old.open(&context, &row.sealed).inspect_err(|_| {
                        tracing::error!(table = col.table, column = col.column, row = %row.row_key, "a sealed value does not open under the current key");
                    })?;
                    let resealed = new.seal(&context, &plain);
                    let q = diesel::sql_query(&update).bind::<Binary, _>(resealed);
                    let n = match col.key {
                        RowKey::Text(_) => q.bind::<Text, _>(&row.row_key).execute(c)?,
                        RowKey::Int(_) => {
                            let id: i64 = row.row_key.parse().map_err(|_| {
                                StoreError::Corrupt(format!("{} row key {}", col.table, row.row_key))
                            })?;
                            q.bind::<BigInt, _>(id).execute(c)?
                        }
                    };
                    if n != 1 {
                        return Err(StoreError::Corrupt(format!(
                            "{}.{}: row {} updated {n} times",
                            col.table, col.column, row.row_key
                        )));
                    }
                    done += 1;
                    progress(done);
                }
            }
            diesel::delete(key_check::table).execute(c)?;
            diesel::insert_into(key_check::table)
                .values(KeyCheckRow {
                    id: 1,
                    sealed_check: &new.seal(CHECK_CONTEXT, CHECK_PLAINTEXT),
                    created_at: self.now(),
                })
                .execute(c)?;
            Ok(done)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
    }

    /// Every column named `sealed_*` in the schema is in [`SEALED_COLUMNS`], so that key
    /// rotation cannot miss one.
    #[test]
    fn every_sealed_column_of_the_schema_is_listed() {
        let dir = std::env::temp_dir().join(format!("provd-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("k.db").display().to_string();
        let store = Store::open(&url, MasterKey::generate(), 1).unwrap();
        let columns: Vec<Column> = diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table'",
        )
        .load(&mut *store.conn().unwrap())
        .unwrap();
        let sealed: Vec<&Column> = columns
            .iter()
            .filter(|c| c.column_name.starts_with("sealed_"))
            .collect();
        assert!(sealed.len() >= SEALED_COLUMNS.len());
        for c in sealed {
            if c.table_name == "key_check" {
                continue;
            }
            assert!(
                SEALED_COLUMNS
                    .iter()
                    .any(|s| s.table == c.table_name && s.column == c.column_name),
                "{}.{} is sealed but not in SEALED_COLUMNS",
                c.table_name,
                c.column_name
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
