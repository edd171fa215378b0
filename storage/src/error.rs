//! Errors, one enum per kind of failure. `OpError` is what a domain operation returns and
//! what the HTTP edge maps to problem+json; `StoreError` is the store itself failing.

use crate::codec::CodecError;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    #[error("corrupt record in {table}: {source}")]
    Codec {
        table: &'static str,
        source: CodecError,
    },
    #[error("the store writer is gone (shutting down)")]
    WriterGone,
    /// The follow-up of a committed change did not finish (its runtime stopped).
    #[error("the follow-up of a committed change was interrupted (shutting down)")]
    Interrupted,
    /// The store cannot write (a disk or I/O failure) and is being reopened; the text is
    /// the failure. Nothing was changed; the same call succeeds once the store is back.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether this is the disk failing rather than a bad record: an I/O error, or redb
    /// refusing every call after one (`PreviousIo`) until the database is reopened. The
    /// store writer recovers from these by reopening; the HTTP edge answers them with 503.
    pub fn is_io_failure(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Db(err) => matches!(
                err,
                redb::Error::Io(_)
                    | redb::Error::PreviousIo
                    | redb::Error::DatabaseClosed
                    | redb::Error::Backend(_)
            ),
            _ => false,
        }
    }
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(err: $t) -> Self {
                StoreError::Db(err.into())
            }
        }
        impl From<$t> for OpError {
            fn from(err: $t) -> Self {
                OpError::Store(StoreError::Db(err.into()))
            }
        }
    )*};
}
redb_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::DatabaseError,
    redb::CompactionError
);

/// Why a domain operation was refused. The message always names the field or the rule.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The caller may not see it, or it does not exist: indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may see it but the named rule forbids the change.
    #[error("{0}")]
    Forbidden(crate::rule::Rule),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        OpError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        OpError::NotFound(what.into())
    }

    /// The store's [`StoreError::is_io_failure`]; never true of a refused operation.
    pub fn is_io_failure(&self) -> bool {
        matches!(self, OpError::Store(err) if err.is_io_failure())
    }
}
