//! The relational adapter: SQLite (embedded) and, with the distributed engine,
//! MySQL/MariaDB, through sqlx's `Any` driver so each query is written once.
//!
//! Dialect rules that keep queries portable: `?` placeholders, `!` as the
//! LIKE escape character (a backslash means different things in the two
//! dialects' string literals), times as
//! BIGINT epoch milliseconds, ids as BIGINT, no booleans (0/1 BIGINT), no
//! `RETURNING`, `CAST(SUM(..) AS SIGNED)`-free aggregates. Where the dialects
//! really differ (upserts) the query is chosen by [`Dialect`].
//!
//! SQLite allows one writer at a time. Rather than letting pooled connections
//! race for the write lock (and fail with `SQLITE_BUSY` when a deferred
//! transaction upgrades), the store keeps a pool of one writer connection and
//! a pool of read-only connections; WAL mode lets readers run beside the
//! writer. On MySQL both handles point to one pool.

mod accounts;
mod catalog;
mod chat_writer;
mod identities;
mod market;
mod messages;
mod notifications;
mod orders;
mod outbox;
mod payments;
mod product_reviews;
mod refunds;
mod rooms;
mod sandbox;
mod sessions;
mod verification;

pub use accounts::InsertUserError;
pub use catalog::{
    AdjustmentRecord, CartAdd, CartRow, NewOption, OptionRecord, ProductFields, ProductQuery,
    ProductRecord, SkuWrite, StockChange, StockOutcome,
};
pub use identities::{
    CreateWithIdentityError, FlowRecord, IdentityRecord, LinkOutcome, NewFlow, NewIdentity,
    UnlinkOutcome,
};
pub use market::{
    FeedQuery, ListingFields, ListingRecord, MediaRecord, NeighbourhoodRecord, NewMedia, NewReview,
    ReportRecord, ReservationRecord, ReviewInsert, ReviewSummary, Verified,
};
pub use notifications::{KeywordAdd, NewNotification, NotificationRecord, JOB_EMAIL_SEND};
pub use orders::{
    expiry_job, LineRequest, ListingForOrder, NewOrder, OrderLineRecord, OrderRecord, OrderTx,
    PricedLine, JOB_LISTING_RELEASE, JOB_ORDER_EXPIRE, JOB_STOCK_RESTORE,
};
pub use outbox::{JobRecord, JobsFor, NewJob};
pub use payments::{NewPayment, PaymentEvent, PaymentFailure, PaymentRecord, Recorded};
pub use product_reviews::{ProductReviewRecord, ReviewableLine};
pub use refunds::{CancelLine, Cancelled, NewRefund, RefundLine, RefundRecord, JOB_PAYMENT_REFUND};
pub use rooms::{JoinOutcome, ListingCard, MyRoom, NewOpenRoom};
pub use sandbox::{SandboxCancel, SandboxPayment};
pub use verification::{TokenUse, PURPOSE_VERIFY_EMAIL};

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::store::StoreError;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    /// MySQL 8 and MariaDB 10.11.
    MySql,
}

pub struct SqlStore {
    read: AnyPool,
    write: AnyPool,
    dialect: Dialect,
    /// SQLite: the connection that checkpoints the WAL in the background.
    checkpointer: Option<AnyPool>,
    /// SQLite: the thread that commits chat writes ([`chat_writer`]).
    chat_writer: Option<Arc<chat_writer::ChatWriter>>,
    /// Rung after a transaction that wrote outbox jobs committed, so this
    /// node's worker runs them at once instead of at its next poll.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// The last day (epoch days) this store swept old `mail_quota` rows.
    quota_swept_day: std::sync::atomic::AtomicI64,
}

/// Declares the per-area views of the store: `sql.orders()` is an
/// [`OrdersSql`] whose methods are the order queries, and so on. A view is
/// a borrowed [`SqlStore`] (it derefs to it for the connections and the
/// shared helpers); each area's queries live in their own files as methods
/// of their view, so a caller names the area it works in
/// (`self.sql.catalog().product(id)`), and one area's file does not grow
/// the others' surface.
macro_rules! area_views {
    ($( $(#[doc = $doc:literal])* $name:ident => $view:ident; )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Clone, Copy)]
            pub struct $view<'a>(&'a SqlStore);

            impl std::ops::Deref for $view<'_> {
                type Target = SqlStore;
                fn deref(&self) -> &SqlStore {
                    self.0
                }
            }
        )*

        impl SqlStore {
            $(
                $(#[doc = $doc])*
                pub fn $name(&self) -> $view<'_> {
                    $view(self)
                }
            )*
        }
    };
}

area_views! {
    /// Users, identities (Kakao, Google), email verification and tokens.
    accounts => AccountsSql;
    /// Rooms, members, messages and read pointers.
    chat => ChatSql;
    /// Listings, reservations, reviews, reports, favourites, blocks, listing chats.
    market => MarketSql;
    /// Uploaded images and their quota.
    media => MediaSql;
    /// Products, options, stock, the cart and product reviews.
    catalog => CatalogSql;
    /// Orders and their lines.
    orders => OrdersSql;
    /// Payments, intents, refunds, failures and the sandbox provider.
    payments => PaymentsSql;
    /// The inbox, preferences, keyword alerts and mutes.
    notifications => NotificationsSql;
    /// The transactional outbox's jobs.
    outbox => OutboxSql;
}

/// The file path inside a `sqlite:` URL, if it names a file.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty()).then(|| PathBuf::from(path))
}

impl SqlStore {
    /// Connect (creating the SQLite file and its directory if needed). Does
    /// not migrate: call [`SqlStore::migrate`].
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        SqlStore::connect_with(url, "FULL", 16).await
    }

    /// Connect with SQLite's `synchronous` mode (`FULL` or `NORMAL`) and,
    /// for MySQL, `pool_size` connections.
    pub async fn connect_with(
        url: &str,
        synchronous: &'static str,
        pool_size: u32,
    ) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            return SqlStore::connect_mysql(url, pool_size).await;
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Other(format!(
                "unsupported database URL scheme: {url}"
            )));
        }
        let Some(path) = sqlite_path(url) else {
            return Err(StoreError::Other(format!(
                "the embedded engine needs a database file: {url}"
            )));
        };
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let url = if url.contains("mode=") {
            url.to_string()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    // FULL (default): a commit is on disk before we
                    // acknowledge it (chat invariant 2); group commit
                    // amortises the fsync. NORMAL trades power-loss
                    // durability for latency (docs/OPERATIONS.md).
                    let sync = if synchronous == "NORMAL" {
                        "PRAGMA synchronous = NORMAL"
                    } else {
                        "PRAGMA synchronous = FULL"
                    };
                    conn.execute(sync).await?;
                    // Checkpoints run in the background (`checkpoint`,
                    // every 500 ms, on their own connection). SQLite's
                    // default would also run one inside the commit that
                    // takes the WAL past 1,000 pages, which at a few
                    // thousand messages/s is several times a second, each
                    // a stall for every ack waiting on that commit. The
                    // writer's own is kept only as a backstop, should the
                    // background one fall behind.
                    conn.execute("PRAGMA wal_autocheckpoint = 16384").await?;
                    // A group commit's multi-row statements each keep a
                    // statement journal (to undo just that statement should
                    // it fail); past 64 KiB SQLite spills it to a new file
                    // in /var/tmp. strace of a commit-bound run counted four
                    // times as many writes to those files as to the WAL. In
                    // memory they cost a copy, not a syscall (commits 31%
                    // shorter, docs/BENCHMARKS.md).
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let read = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA query_only = ON").await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let checkpointer = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let chat_writer = chat_writer::ChatWriter::open(&path, synchronous)?;
        Ok(SqlStore {
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            read,
            write,
            dialect: Dialect::Sqlite,
            checkpointer: Some(checkpointer),
            chat_writer: Some(Arc::new(chat_writer)),
            quota_swept_day: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    /// MySQL / MariaDB: one pool serves reads and writes (the server
    /// handles concurrent writers itself).
    async fn connect_mysql(url: &str, pool_size: u32) -> Result<SqlStore, StoreError> {
        let url = url.replacen("mariadb:", "mysql:", 1);
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'",
                    )
                    .await?;
                    conn.execute("SET NAMES utf8mb4 COLLATE utf8mb4_bin")
                        .await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(SqlStore {
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            read: pool.clone(),
            write: pool,
            dialect: Dialect::MySql,
            checkpointer: None,
            chat_writer: None,
            quota_swept_day: std::sync::atomic::AtomicI64::new(i64::MIN),
        })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS.run(&self.write).await?,
            Dialect::MySql => MYSQL_MIGRATIONS.run(&self.write).await?,
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The two-argument maximum function of the dialect.
    pub(crate) fn greatest(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "MAX",
            Dialect::MySql => "GREATEST",
        }
    }

    /// Lock one room's row for the rest of the transaction (MySQL; SQLite
    /// has a single writer already). Every transaction that touches a room
    /// and its members takes this lock first, so they all lock in the same
    /// order and cannot deadlock on each other. False if there is no room.
    pub(crate) async fn lock_room(
        &self,
        conn: &mut sqlx::AnyConnection,
        room_id: i64,
    ) -> Result<bool, StoreError> {
        let sql = match self.dialect {
            Dialect::Sqlite => "SELECT id FROM rooms WHERE id = ?",
            Dialect::MySql => "SELECT id FROM rooms WHERE id = ? FOR UPDATE",
        };
        let row: Option<(i64,)> = sqlx::query_as(sql)
            .bind(room_id)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.is_some())
    }

    /// ` FOR UPDATE` on MySQL, nothing on SQLite (one writer).
    /// Take `user`'s row lock for the rest of the transaction (MySQL; on
    /// SQLite the one writer serialises anyway): per-user limits counted
    /// after it cannot be raced by the same user's parallel requests.
    pub(crate) async fn lock_user(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        user: i64,
    ) -> Result<(), StoreError> {
        if self.dialect == Dialect::MySql {
            sqlx::query("SELECT id FROM users WHERE id = ? FOR UPDATE")
                .bind(user)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub(crate) fn for_update(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::MySql => " FOR UPDATE",
        }
    }

    /// Readiness probe: both handles answer a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        sqlx::query("SELECT 1").execute(&self.write).await?;
        Ok(())
    }

    /// Copy committed WAL frames into the database file without blocking
    /// the writer (SQLite `PASSIVE` checkpoint). Called periodically; a
    /// no-op for other dialects.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if let Some(pool) = &self.checkpointer {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        let _ = self.checkpoint().await;
        self.read.close().await;
        self.write.close().await;
        if let Some(pool) = &self.checkpointer {
            pool.close().await;
        }
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.read
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Begin a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), waiting in the busy handler if the chat writer
    /// holds it: a deferred transaction that read first and then wrote
    /// would fail outright (`SQLITE_BUSY_SNAPSHOT`) whenever the chat
    /// writer committed in between.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Dialect::MySql => self.write.begin().await,
        }
    }
}

/// `?, ?, ...` for an IN list of `n` values.
pub(crate) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// How often a transaction that lost a lock conflict is run again.
const RETRIES: u32 = 5;

/// True for errors that mean "run the transaction again": a deadlock or
/// lock-wait timeout on MySQL/MariaDB (1213 / 1205), a busy or locked
/// database on SQLite (5 / 6). The transaction was rolled back as a whole,
/// so running it again is safe.
pub(crate) fn is_transient(e: &StoreError) -> bool {
    let StoreError::Sql(sqlx::Error::Database(d)) = e else {
        return false;
    };
    let message = d.message();
    matches!(d.code().as_deref(), Some("40001" | "5" | "6" | "517"))
        || message.contains("Deadlock found")
        || message.contains("Lock wait timeout")
        || message.contains("database is locked")
}

/// Run a transaction, again (with a short, growing pause) if it failed on a
/// lock conflict. Lock order is kept the same everywhere (the `rooms` row
/// before `room_members`, see [`SqlStore::lock_room`]) so conflicts are
/// rare; this covers the rest (InnoDB gap locks, MySQL's own victims).
pub(crate) async fn retrying<T, F, Fut>(what: &str, mut run: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match run().await {
            Err(e) if attempt < RETRIES && is_transient(&e) => {
                attempt += 1;
                tracing::debug!(what, attempt, error = %e, "transaction conflict; retrying");
                tokio::time::sleep(Duration::from_millis(2u64 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// The id generated by the last INSERT on this connection. sqlx's `Any`
/// driver does not report it for SQLite, and MySQL 8 has no `RETURNING`, so
/// we ask the connection itself, per dialect.
pub(crate) async fn last_insert_id(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
) -> Result<i64, StoreError> {
    let sql = match dialect {
        Dialect::Sqlite => "SELECT last_insert_rowid()",
        Dialect::MySql => "SELECT CAST(LAST_INSERT_ID() AS SIGNED)",
    };
    let (id,): (i64,) = sqlx::query_as(sql).fetch_one(&mut *conn).await?;
    Ok(id)
}

/// An insert that may hit a unique key: `Ok(true)` if it inserted,
/// `Ok(false)` if the row was there already (idempotent writes).
pub(crate) fn inserted(
    r: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
) -> Result<bool, StoreError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `LIKE` pattern for a substring, with `!` as the escape character
/// (`... LIKE ? ESCAPE '!'`): `%`, `_` and `!` in the input match literally.
pub(crate) fn like_pattern(q: &str) -> String {
    let escaped: String = q
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '!' => vec!['!', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// A value for a query built piece by piece (filters that may or may not
/// apply): pushed in the order of its `?`s, bound at the end.
pub(crate) enum Bind {
    I(i64),
    T(String),
}

/// Bind `binds` in order.
pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::I(i) => q.bind(i),
            Bind::T(t) => q.bind(t),
        };
    }
    q
}

/// True when the error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/j.db"),
            Some(PathBuf::from("data/j.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/j.db?mode=rwc"),
            Some(PathBuf::from("/tmp/j.db"))
        );
        assert_eq!(sqlite_path("sqlite:j.db"), Some(PathBuf::from("j.db")));
        assert_eq!(sqlite_path("mysql://x"), None);
    }
}
