//! `schema.rs` against both migration sets: the migrations run on a fresh SQLite file and in a
//! fresh PostgreSQL schema, and every table of `schema.rs` must have in the live catalog the
//! same columns, in the same order, with the same SQL types (in one spelling for both
//! backends) and nullability; and the database must hold no table or column that
//! `schema.rs` lacks. What `diesel print-schema` would show, without installing diesel_cli.
//!
//! A table added to `schema.rs` is one line in `schema_rs_tables` below; one missing there is
//! reported as a table `schema.rs` lacks.

use diesel::sql_types::{BigInt, Binary, Bool, Integer, Nullable, Text};
use diesel::{Column, Expression, Table};

use super::schema;

/// One column, as `schema.rs` declares it or as a database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Col {
    pub name: String,
    /// `bigint`, `integer`, `text`, `binary` or `bool`; anything else is spelled as the
    /// database spells it, and matches nothing.
    pub kind: String,
    pub nullable: bool,
}

impl std::fmt::Display for Col {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let null = if self.nullable { "NULL" } else { "NOT NULL" };
        write!(f, "{} {} {null}", self.name, self.kind)
    }
}

/// A diesel SQL type in the spelling of [`Col::kind`].
trait SqlKind {
    const KIND: &'static str;
    const NULLABLE: bool = false;
}

impl SqlKind for BigInt {
    const KIND: &'static str = "bigint";
}
impl SqlKind for Integer {
    const KIND: &'static str = "integer";
}
impl SqlKind for Text {
    const KIND: &'static str = "text";
}
impl SqlKind for Binary {
    const KIND: &'static str = "binary";
}
impl SqlKind for Bool {
    const KIND: &'static str = "bool";
}
impl<T: SqlKind> SqlKind for Nullable<T> {
    const KIND: &'static str = T::KIND;
    const NULLABLE: bool = true;
}

/// The columns of a `table!`'s `AllColumns` tuple, in order.
trait Columns {
    fn describe() -> Vec<Col>;
}

macro_rules! impl_columns {
    ($($c:ident),+) => {
        impl<$($c),+> Columns for ($($c,)+)
        where
            $($c: Column + Expression, <$c as Expression>::SqlType: SqlKind,)+
        {
            fn describe() -> Vec<Col> {
                vec![$(Col {
                    name: <$c as Column>::NAME.to_owned(),
                    kind: <<$c as Expression>::SqlType as SqlKind>::KIND.to_owned(),
                    nullable: <<$c as Expression>::SqlType as SqlKind>::NULLABLE,
                }),+]
            }
        }
    };
}

macro_rules! tuples_of_columns {
    ($first:ident) => {
        impl_columns!($first);
    };
    ($first:ident, $($rest:ident),+) => {
        impl_columns!($first, $($rest),+);
        tuples_of_columns!($($rest),+);
    };
}

tuples_of_columns!(
    C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17, C18, C19, C20, C21,
    C22, C23, C24, C25, C26, C27, C28, C29, C30, C31, C32
);

/// Every table of `schema.rs` with its columns.
pub(super) fn schema_rs_tables() -> Vec<(String, Vec<Col>)> {
    macro_rules! tables {
        ($($t:ident),+ $(,)?) => {
            vec![$((
                stringify!($t).to_owned(),
                <<schema::$t::table as Table>::AllColumns as Columns>::describe(),
            )),+]
        };
    }
    tables!(
        users,
        authenticators,
        registrations,
        device_instances,
        audit_log,
        outbox,
        key_check,
        health_probe,
        hermod_clients,
        attestation_keys,
        hermod_commands,
        device_profiles,
        device_keys,
        hermod_callbacks,
    )
}

/// Tables of the database that are not provd's data: diesel's migration bookkeeping and
/// SQLite's AUTOINCREMENT counters.
const NOT_DATA: [&str; 2] = ["__diesel_schema_migrations", "sqlite_sequence"];

/// The differences between `schema.rs` (`declared`) and a database (`live`, its tables with
/// their columns in order), one line each; empty when they agree. `compatible` says whether
/// a live column is what a declared one says (a backend may accept more than one spelling).
pub(super) fn differences(
    backend: &str,
    declared: &[(String, Vec<Col>)],
    live: &[(String, Vec<Col>)],
    compatible: impl Fn(&Col, &Col) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (table, columns) in declared {
        let Some((_, in_db)) = live.iter().find(|(t, _)| t == table) else {
            out.push(format!(
                "{backend}: table {table} is in schema.rs but not in the database"
            ));
            continue;
        };
        for (i, col) in columns.iter().enumerate() {
            match in_db.get(i) {
                Some(db) if db.name == col.name && compatible(col, db) => {}
                Some(db) => out.push(format!(
                    "{backend}: {table} column {}: schema.rs has `{col}`, the database `{db}`",
                    i + 1
                )),
                None => out.push(format!(
                    "{backend}: {table}.{} (`{col}`) is in schema.rs but not in the database",
                    col.name
                )),
            }
        }
        for db in in_db.iter().skip(columns.len()) {
            out.push(format!(
                "{backend}: {table}.{} (`{db}`) is in the database but not in schema.rs",
                db.name
            ));
        }
    }
    for (table, _) in live {
        if !NOT_DATA.contains(&table.as_str()) && !declared.iter().any(|(t, _)| t == table) {
            out.push(format!(
                "{backend}: table {table} is in the database but not in schema.rs"
            ));
        }
    }
    out
}

/// Groups catalog rows (table, column), already in table and column order, by table.
fn group(rows: impl IntoIterator<Item = (String, Col)>) -> Vec<(String, Vec<Col>)> {
    let mut out: Vec<(String, Vec<Col>)> = Vec::new();
    for (table, col) in rows {
        match out.last_mut() {
            Some((t, cols)) if *t == table => cols.push(col),
            _ => out.push((table, vec![col])),
        }
    }
    out
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use diesel::prelude::*;
    use diesel::sql_types::{Integer, Text};
    use diesel::sqlite::SqliteConnection;
    use diesel_migrations::MigrationHarness;

    use super::Col;

    #[derive(QueryableByName)]
    struct Info {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        column_type: String,
        #[diesel(sql_type = Integer)]
        not_null: i32,
        #[diesel(sql_type = Integer)]
        pk: i32,
        #[diesel(sql_type = Integer)]
        pk_columns: i32,
    }

    /// The marker kind of a rowid alias (`INTEGER PRIMARY KEY`): a 64-bit integer that is
    /// never NULL, which `schema.rs` may declare `BigInt` or `Integer`.
    pub(super) const ROWID: &str = "integer primary key (rowid)";

    /// The tables and columns of a SQLite database, in order, kinds normalized.
    pub(super) fn catalog(conn: &mut SqliteConnection) -> Vec<(String, Vec<Col>)> {
        let rows: Vec<Info> = diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, p.type AS column_type, \
             p.\"notnull\" AS not_null, p.pk AS pk, \
             (SELECT COUNT(*) FROM pragma_table_info(m.name) q WHERE q.pk > 0) AS pk_columns \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )
        .load(conn)
        .expect("read the SQLite catalog");
        super::group(rows.into_iter().map(|r| {
            let declared = r.column_type.to_ascii_uppercase();
            let rowid = declared == "INTEGER" && r.pk == 1 && r.pk_columns == 1;
            let kind = match declared.as_str() {
                _ if rowid => ROWID,
                "BIGINT" => "bigint",
                "INTEGER" => "integer",
                "TEXT" => "text",
                "BLOB" => "binary",
                "BOOLEAN" => "bool",
                _ => declared.as_str(),
            };
            let col = Col {
                name: r.column_name,
                kind: kind.to_owned(),
                nullable: r.not_null == 0 && !rowid,
            };
            (r.table_name, col)
        }))
    }

    /// A declared column against a live one: a rowid alias is a `BigInt` or an `Integer`.
    pub(super) fn compatible(declared: &Col, live: &Col) -> bool {
        declared.nullable == live.nullable
            && (declared.kind == live.kind
                || (live.kind == ROWID && ["bigint", "integer"].contains(&declared.kind.as_str())))
    }

    /// A fresh SQLite database with every migration applied; removed when dropped.
    pub(super) struct Fresh {
        pub conn: SqliteConnection,
        dir: std::path::PathBuf,
    }

    impl Fresh {
        pub fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "provd-schema-check-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("schema.db");
            let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            conn.run_pending_migrations(super::super::SQLITE_MIGRATIONS)
                .expect("the SQLite migrations run");
            Fresh { conn, dir }
        }
    }

    impl Drop for Fresh {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use diesel::connection::SimpleConnection;
    use diesel::pg::PgConnection;
    use diesel::prelude::*;
    use diesel::sql_types::Text;
    use diesel_migrations::MigrationHarness;

    use super::Col;

    #[derive(QueryableByName)]
    struct Info {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
        #[diesel(sql_type = Text)]
        data_type: String,
        #[diesel(sql_type = Text)]
        is_nullable: String,
    }

    /// The tables and columns of one PostgreSQL schema, in order, kinds normalized.
    pub(super) fn catalog(conn: &mut PgConnection, schema: &str) -> Vec<(String, Vec<Col>)> {
        let rows: Vec<Info> = diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             data_type::text AS data_type, is_nullable::text AS is_nullable \
             FROM information_schema.columns WHERE table_schema = $1 \
             ORDER BY table_name, ordinal_position",
        )
        .bind::<Text, _>(schema)
        .load(conn)
        .expect("read information_schema.columns");
        super::group(rows.into_iter().map(|r| {
            let kind = match r.data_type.as_str() {
                "bigint" => "bigint",
                "integer" => "integer",
                "text" => "text",
                "bytea" => "binary",
                "boolean" => "bool",
                other => other,
            };
            let col = Col {
                name: r.column_name,
                kind: kind.to_owned(),
                nullable: r.is_nullable == "YES",
            };
            (r.table_name, col)
        }))
    }

    /// A schema of its own in the test database, with every migration applied; dropped (with
    /// everything in it) when this is.
    pub(super) struct Fresh {
        pub conn: PgConnection,
        pub schema: String,
    }

    impl Fresh {
        pub fn new(url: &str) -> Self {
            let mut conn = PgConnection::establish(url)
                .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let schema = format!("provd_schema_check_{}_{nanos}", std::process::id());
            conn.batch_execute(&format!(
                "CREATE SCHEMA {schema}; SET search_path TO {schema}"
            ))
            .expect("create the schema");
            let mut fresh = Fresh { conn, schema };
            fresh
                .conn
                .run_pending_migrations(super::super::POSTGRES_MIGRATIONS)
                .expect("the PostgreSQL migrations run");
            fresh
        }
    }

    impl Drop for Fresh {
        fn drop(&mut self) {
            let _ = self
                .conn
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_agree(differences: Vec<String>) {
        assert!(
            differences.is_empty(),
            "src/store/schema.rs does not match the migrations:\n  {}",
            differences.join("\n  ")
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn schema_rs_matches_the_sqlite_migrations() {
        let mut db = sqlite::Fresh::new();
        let live = sqlite::catalog(&mut db.conn);
        assert!(live.iter().any(|(t, _)| t == "users"), "{live:?}");
        assert_agree(differences(
            "SQLite",
            &schema_rs_tables(),
            &live,
            sqlite::compatible,
        ));
    }

    #[cfg(feature = "postgres")]
    #[test]
    #[cfg_attr(
        not(provd_pg_tests),
        ignore = "PROVD_TEST_POSTGRES_URL is not set: schema.rs was NOT checked against the PostgreSQL migrations"
    )]
    fn schema_rs_matches_the_postgres_migrations() {
        let url = std::env::var("PROVD_TEST_POSTGRES_URL")
            .expect("PROVD_TEST_POSTGRES_URL (set when this test was built)");
        let mut db = postgres::Fresh::new(&url);
        let schema = db.schema.clone();
        let live = postgres::catalog(&mut db.conn, &schema);
        assert!(live.iter().any(|(t, _)| t == "users"), "{live:?}");
        assert_agree(differences(
            "PostgreSQL",
            &schema_rs_tables(),
            &live,
            |declared, live| declared == live,
        ));
    }

    #[cfg(not(feature = "postgres"))]
    #[test]
    #[ignore = "built without the `postgres` feature: schema.rs was NOT checked against the PostgreSQL migrations"]
    fn schema_rs_matches_the_postgres_migrations() {}

    /// The comparison itself finds what it is meant to: a column renamed, retyped, made
    /// nullable, moved, missing or extra, and a table missing on either side.
    #[test]
    fn a_difference_is_reported() {
        let col = |name: &str, kind: &str, nullable: bool| Col {
            name: name.into(),
            kind: kind.into(),
            nullable,
        };
        let declared = vec![(
            "t".to_owned(),
            vec![col("a", "bigint", false), col("b", "text", true)],
        )];
        let same = |d: &Col, l: &Col| d == l;
        assert!(differences("db", &declared, &declared, same).is_empty());
        let cases: Vec<Vec<(String, Vec<Col>)>> = vec![
            vec![(
                "t".into(),
                vec![col("a", "bigint", false), col("c", "text", true)],
            )],
            vec![(
                "t".into(),
                vec![col("a", "integer", false), col("b", "text", true)],
            )],
            vec![(
                "t".into(),
                vec![col("a", "bigint", false), col("b", "text", false)],
            )],
            vec![(
                "t".into(),
                vec![col("b", "text", true), col("a", "bigint", false)],
            )],
            vec![("t".into(), vec![col("a", "bigint", false)])],
            vec![(
                "t".into(),
                vec![
                    col("a", "bigint", false),
                    col("b", "text", true),
                    col("x", "text", true),
                ],
            )],
            vec![],
            [
                declared.clone(),
                vec![("u".into(), vec![col("a", "text", false)])],
            ]
            .concat(),
        ];
        for live in cases {
            assert!(
                !differences("db", &declared, &live, same).is_empty(),
                "{live:?} passed"
            );
        }
        // diesel's bookkeeping is not provd's data.
        let with_bookkeeping = [
            declared.clone(),
            vec![(
                "__diesel_schema_migrations".into(),
                vec![col("v", "text", false)],
            )],
        ]
        .concat();
        assert!(differences("db", &declared, &with_bookkeeping, same).is_empty());
    }
}
