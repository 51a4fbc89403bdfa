//! `StoreError`: every way a storage call can fail, one enum for the whole store boundary.

use rusqlite::ffi;

/// Why a store call failed. The server turns anything but the domain answers
/// (`AlreadyExists`, `NotFound`, `NoSuchAccount`) into `<internal-server-error/>` in one place.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing to create (an account) is already there.
    #[error("already exists")]
    AlreadyExists,
    /// The thing named (an archive id given as an RSM anchor) is not there.
    #[error("not found")]
    NotFound,
    /// The owner named in a write (roster item, offline message) has no account.
    #[error("no such account")]
    NoSuchAccount,
    /// The database was written by a newer drupe; opening it could corrupt it.
    #[error("database schema version {found} is newer than the {known} this drupe knows; upgrade drupe")]
    NewerSchema { found: i64, known: i64 },
    /// The disk (or the configured size limit) is full: the write was refused
    /// and rolled back, nothing stored is damaged.
    #[error("disk full: the write was refused and nothing was stored")]
    DiskFull,
    /// The store was closed, or its writer thread is gone.
    #[error("store is closed")]
    Closed,
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull,
            _ => StoreError::Sqlite(error),
        }
    }
}

impl StoreError {
    /// A copy of this error for each job of a batch that it undid (the
    /// underlying error types are not `Clone`).
    pub(crate) fn replicate(&self) -> StoreError {
        match self {
            StoreError::AlreadyExists => StoreError::AlreadyExists,
            StoreError::NotFound => StoreError::NotFound,
            StoreError::NoSuchAccount => StoreError::NoSuchAccount,
            StoreError::NewerSchema { found, known } => StoreError::NewerSchema { found: *found, known: *known },
            StoreError::DiskFull => StoreError::DiskFull,
            StoreError::Closed => StoreError::Closed,
            StoreError::Io(e) => StoreError::Io(std::io::Error::new(e.kind(), e.to_string())),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, message)) => {
                StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            StoreError::Sqlite(other) => StoreError::internal(other.to_string()),
        }
    }

    /// An SQLITE_INTERNAL failure carrying `message`, for faults that have no
    /// SQLite error of their own (a panicking write job).
    pub(crate) fn internal(message: String) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_INTERNAL), Some(message)))
    }
}
