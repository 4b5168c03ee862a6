//! Mapping database errors into [`StoreError`], with context.

use std::fmt::Display;

use warden_core::store::StoreError;

/// A database error, with what we were doing. Uniqueness violations become `Conflict`.
pub(crate) fn db_error(err: sqlx::Error, context: impl Display) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("{context}: {db}"))
        }
        _ => StoreError::Database(format!("{context}: {err}")),
    }
}

pub(crate) fn migration_error(err: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Migration(err.to_string())
}

/// A value read from the database that does not decode.
pub(crate) fn corrupt(what: impl Display, err: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// `StoreError` is not `Clone`; a batch failure is answered to each waiter with a copy.
pub(crate) fn copy_error(err: &StoreError) -> StoreError {
    match err {
        StoreError::Database(m) => StoreError::Database(m.clone()),
        StoreError::Migration(m) => StoreError::Migration(m.clone()),
        StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
        StoreError::WriterStopped => StoreError::WriterStopped,
        StoreError::NotFound(m) => StoreError::NotFound(m.clone()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
    }
}

/// A `seq` as the database stores it (a signed 64-bit integer).
pub(crate) fn seq_to_db(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Database(format!("seq {seq} is out of range")))
}

/// A `seq` read from the database.
pub(crate) fn seq_from_db(seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative seq {seq}")))
}
