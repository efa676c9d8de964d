//! The sink's two tables: the ticks table (one row per tick, [`COLUMNS`] in order) and the state
//! table holding, per ticks table, the ring position committed with the rows
//! (`docs/storage.md`, "PostgreSQL sink").

use postgres::types::Type as PgType;
use postgres::Client;

use super::SinkError;
use crate::store::columns::{Type, COLUMNS, PRICE_PRECISION};
use tickwire_engine::price::PRICE_DECIMALS;

/// The advisory lock key `ensure` holds while it creates tables ("twsink" in ASCII).
const ENSURE_LOCK: i64 = 0x7477_7369_6e6b;

/// The state table: one row per ticks table.
pub const STATE_TABLE: &str = "tickwire_sink_state";

/// A checked table name: `name` or `schema.name`, each part `[A-Za-z_][A-Za-z0-9_]*` (at most
/// 63 bytes, PostgreSQL's limit), kept as written and always double-quoted in SQL, so case is
/// kept and no name can be mistaken for SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableName {
    name: String,
    quoted: String,
}

impl TableName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 63
                && p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let parts: Vec<&str> = name.split('.').collect();
        if parts.len() > 2 || !parts.iter().all(|p| ok(p)) {
            return Err(format!(
                "table {name:?}: expected NAME or SCHEMA.NAME, each of letters, digits and _ \
                 (not starting with a digit, at most 63)"
            ));
        }
        let quoted = parts
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(".");
        Ok(Self {
            name: name.into(),
            quoted,
        })
    }

    /// As given (the state table's key).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Quoted for SQL.
    pub fn sql(&self) -> &str {
        &self.quoted
    }
}

/// A column type in SQL, and the server's type it must read back as.
fn sql_type(t: Type) -> (String, PgType) {
    match t {
        Type::Text => ("text".into(), PgType::TEXT),
        Type::Int => ("bigint".into(), PgType::INT8),
        Type::Price => (
            format!("numeric({PRICE_PRECISION},{PRICE_DECIMALS})"),
            PgType::NUMERIC,
        ),
        Type::Float => ("double precision".into(), PgType::FLOAT8),
        Type::Time => ("timestamptz".into(), PgType::TIMESTAMPTZ),
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the ticks table.
pub fn create_ticks_sql(t: &TableName) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|c| {
            let null = if c.nullable { "" } else { " NOT NULL" };
            format!("  {} {}{null}", c.name, sql_type(c.ty).0)
        })
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
        t.sql(),
        cols.join(",\n")
    )
}

/// The ticks table's BRIN index on `recv_ts`: rows arrive in receive-time order, so a block range
/// index answers "the rows received between two instants" (the backfill's question, and most
/// research queries) for a few kB of index and next to nothing per `COPY`.
pub fn create_index_sql(t: &TableName) -> String {
    let last = t.as_str().rsplit('.').next().unwrap_or(t.as_str());
    // PostgreSQL's identifier limit is 63 bytes; the index lives in the table's schema.
    let stem = &last[..last.len().min(63 - "_recv_ts_brin".len())];
    format!(
        "CREATE INDEX IF NOT EXISTS \"{stem}_recv_ts_brin\" ON {} USING brin (recv_ts)",
        t.sql()
    )
}

/// `CREATE TABLE IF NOT EXISTS` for the state table.
pub fn create_state_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (\n  table_name text PRIMARY KEY,\n  \
         shm_instance bigint NOT NULL,\n  position bigint NOT NULL,\n  \
         updated_at timestamptz NOT NULL DEFAULT now()\n)"
    )
}

/// The `COPY` statement.
pub fn copy_sql(t: &TableName) -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        t.sql(),
        names.join(", ")
    )
}

/// The state upsert: `$1` table, `$2` shm instance, `$3` position.
pub const SAVE_STATE_SQL: &str = "INSERT INTO tickwire_sink_state \
     (table_name, shm_instance, position, updated_at) VALUES ($1, $2, $3, now()) \
     ON CONFLICT (table_name) DO UPDATE SET shm_instance = EXCLUDED.shm_instance, \
     position = EXCLUDED.position, updated_at = EXCLUDED.updated_at";

/// Creates both tables if missing and checks that an existing ticks table has every column with
/// the type the sink writes (a table made for something else fails here with its name, not at
/// each `COPY`).
pub fn ensure(c: &mut Client, t: &TableName) -> Result<(), SinkError> {
    // One creator at a time: sink lanes connect together, and two concurrent `CREATE … IF NOT
    // EXISTS` of one name can both try (one fails on the catalog's unique index). The lock is
    // the transaction's.
    let mut tx = c.transaction()?;
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({ENSURE_LOCK})"))?;
    tx.batch_execute(&create_ticks_sql(t))?;
    tx.batch_execute(&create_index_sql(t))?;
    tx.batch_execute(&create_state_sql())?;
    tx.commit()?;
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    let probe = format!("SELECT {} FROM {} LIMIT 0", names.join(", "), t.sql());
    let st = c
        .prepare(&probe)
        .map_err(|e| SinkError::Schema(format!("table {}: {e}", t.as_str())))?;
    for (col, got) in COLUMNS.iter().zip(st.columns()) {
        let (name, want) = sql_type(col.ty);
        if got.type_() != &want {
            return Err(SinkError::Schema(format!(
                "table {}: column {} is {}, the sink writes {name}",
                t.as_str(),
                col.name,
                got.type_()
            )));
        }
    }
    Ok(())
}

/// The committed `(shm_instance, position)` under `key` (a lane's, `super::lanes::Lane::state_key`),
/// if any.
pub fn load_state(c: &mut Client, key: &str) -> Result<Option<(i64, u64)>, SinkError> {
    let row = c.query_opt(
        "SELECT shm_instance, position FROM tickwire_sink_state WHERE table_name = $1",
        &[&key],
    )?;
    Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1).max(0) as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(TableName::parse("ticks").unwrap().sql(), "\"ticks\"");
        assert_eq!(
            TableName::parse("md.Ticks_2").unwrap().sql(),
            "\"md\".\"Ticks_2\""
        );
        for bad in [
            "",
            "1ticks",
            "a.b.c",
            "t;drop",
            "t\"",
            "a.",
            &"x".repeat(64),
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_ddl_has_every_column_with_its_type() {
        let sql = create_ticks_sql(&TableName::parse("ticks").unwrap());
        assert!(sql.contains("  exchange text NOT NULL,\n"));
        assert!(sql.contains("  ltp numeric(19,7),\n"));
        assert!(sql.contains("  recv_ts timestamptz NOT NULL,\n"));
        assert!(sql.contains("  iv double precision,\n"));
        assert!(sql.contains("  ask_orders_5 bigint\n)"));
        assert_eq!(sql.matches(",\n").count(), COLUMNS.len() - 1);
    }

    #[test]
    fn the_index_is_named_after_the_table_within_the_length_limit() {
        let sql = create_index_sql(&TableName::parse("md.ticks").unwrap());
        assert_eq!(
            sql,
            "CREATE INDEX IF NOT EXISTS \"ticks_recv_ts_brin\" ON \"md\".\"ticks\" USING brin (recv_ts)"
        );
        let long = "t".repeat(63);
        let sql = create_index_sql(&TableName::parse(&long).unwrap());
        let name = sql.split('"').nth(1).unwrap();
        assert_eq!(name.len(), 63);
    }

    #[test]
    fn docs_storage_md_shows_the_ddl_the_sink_runs() {
        let doc = include_str!("../../../../docs/storage.md");
        let ticks = create_ticks_sql(&TableName::parse("ticks").unwrap());
        assert!(
            doc.contains(&ticks),
            "docs/storage.md: update the ticks table to\n{ticks}"
        );
        let index = create_index_sql(&TableName::parse("ticks").unwrap());
        assert!(doc.contains(&index), "docs/storage.md: the index\n{index}");
        assert!(
            doc.contains(&create_state_sql()),
            "docs/storage.md: the state table"
        );
    }
}
