//! The database: one code path over PostgreSQL and SQLite through diesel's `MultiConnection`.
//!
//! diesel is synchronous, so every query runs on the blocking pool via [`Database::run`], or, for
//! read-only work on hot paths, [`Database::read`]: on SQLite, which allows one writer, a pool of
//! read-only connections beside the single writing one, so reads do not queue behind each other.

pub mod blob_writes;
pub mod records;
pub mod repos;
pub mod schema;
pub mod views;

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseSettings;
use crate::error::Error;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// Timestamps are naive UTC with microsecond precision, so both backends store exactly the same value.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    let micros = now.and_utc().timestamp_micros();
    chrono::DateTime::from_timestamp_micros(micros)
        .expect("current time is representable")
        .naive_utc()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(sqlite) = conn {
            // synchronous = FULL: a commit is on disk when it returns (WAL's NORMAL may lose the last
            // commits on power loss), so a version a push was told is committed stays committed; the
            // blobs it names were flushed before it (storage's `durable`).
            sqlite
                .batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// The read-only connections of an SQLite database: WAL lets them read while the writer writes.
#[derive(Debug)]
struct SqliteReader;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqliteReader {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(sqlite) = conn {
            sqlite
                .batch_execute("PRAGMA query_only = ON; PRAGMA busy_timeout = 10000;")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Read-only SQLite connections (about one per core).
const SQLITE_READERS: u32 = 4;

#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager<DbConnection>>,
    /// SQLite's read-only connections; PostgreSQL reads through `pool`.
    readers: Option<Pool<ConnectionManager<DbConnection>>>,
}

impl Database {
    /// Connects, and brings the schema up to date with the migrations embedded in this binary.
    pub fn connect(settings: &DatabaseSettings) -> Result<Self, Error> {
        let (url, max_size) = match settings {
            // SQLite allows one writer; one pooled connection serialises writers instead of failing them
            // with SQLITE_BUSY when a read transaction tries to upgrade.
            DatabaseSettings::Sqlite { path } => (path.display().to_string(), 1),
            DatabaseSettings::Postgres { url } => (url.clone(), 16),
        };
        let sqlite = matches!(settings, DatabaseSettings::Sqlite { .. });
        let manager = ConnectionManager::<DbConnection>::new(url.clone());
        let pool = Pool::builder()
            .max_size(max_size)
            .connection_timeout(Duration::from_secs(30))
            // A file never drops a connection: no `SELECT 1` before each use.
            .test_on_check_out(!sqlite)
            .connection_customizer(Box::new(SqlitePragmas))
            .build(manager)
            .map_err(|e| Error::Startup(format!("cannot connect to the database: {e}")))?;
        let mut db = Self {
            pool,
            readers: None,
        };
        db.migrate()?;
        if sqlite {
            // After the migrations: the readers open the schema as it now is.
            db.readers = Some(
                Pool::builder()
                    .max_size(SQLITE_READERS)
                    .connection_timeout(Duration::from_secs(30))
                    .test_on_check_out(false)
                    .connection_customizer(Box::new(SqliteReader))
                    .build(ConnectionManager::<DbConnection>::new(url))
                    .map_err(|e| Error::Startup(format!("cannot open the database: {e}")))?,
            );
        }
        Ok(db)
    }

    fn migrate(&self) -> Result<(), Error> {
        let mut conn = self.pool.get()?;
        let migrations = match &*conn {
            DbConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
            DbConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        };
        conn.run_pending_migrations(migrations)
            .map_err(|e| Error::Startup(format!("database migration failed: {e}")))?;
        Ok(())
    }

    /// Runs `f`, which only reads, on a read-only connection (SQLite) or a pooled one (PostgreSQL).
    pub async fn read<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, Error> + Send + 'static,
    {
        let pool = self.readers.clone().unwrap_or_else(|| self.pool.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = checked_out(&pool)?;
            f(&mut conn)
        })
        .await?
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, Error> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = checked_out(&pool)?;
            f(&mut conn)
        })
        .await?
    }

    /// Connections open in the writing pool, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }
}

/// A pooled connection; the wait for it is a metric (a pool too small for the load shows there first).
fn checked_out(
    pool: &Pool<ConnectionManager<DbConnection>>,
) -> Result<diesel::r2d2::PooledConnection<ConnectionManager<DbConnection>>, Error> {
    let started = std::time::Instant::now();
    let conn = pool.get()?;
    metrics::histogram!(crate::telemetry::metrics::DB_POOL_WAIT)
        .record(started.elapsed().as_secs_f64());
    Ok(conn)
}

/// Runs `f` in a transaction, again (up to three times in all) when a concurrent request created the
/// same rows first (the retry sees them), or when the database broke a deadlock with a concurrent
/// transaction (a pipeline job storing the version's variants while the version is deleted) by
/// aborting this one.
pub fn transaction_retried<T>(
    conn: &mut DbConnection,
    mut f: impl FnMut(&mut DbConnection) -> Result<T, crate::error::Error>,
) -> Result<T, crate::error::Error> {
    use diesel::Connection;
    use repos::{is_transient_conflict, is_unique_violation};
    let mut attempts = 0;
    loop {
        attempts += 1;
        match conn.transaction(&mut f) {
            Err(Error::Database(e))
                if (is_unique_violation(&e) || is_transient_conflict(&e)) && attempts < 3 =>
            {
                continue;
            }
            other => return other,
        }
    }
}
