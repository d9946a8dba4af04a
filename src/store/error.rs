//! The storage layer's error type, shared by every adapter (SQL, Redis,
//! MongoDB, media files). Callers above the store turn it into an API error
//! (`From<StoreError> for Refusal` in `crate::error`).

/// Failures of a storage adapter. They carry their cause for the log; the
/// client only ever sees `internal` (or `unavailable` when a backend does
/// not answer).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// The embedded engine's chat writer (its own SQLite connection).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
    /// A backend does not answer (connection refused or dropped, timeout):
    /// the request may succeed later.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}
