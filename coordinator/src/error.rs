//! The error of the coordinator's operations. `api::error` maps it to HTTP in one place.

use crate::store::StoreError;
use berth_shared::api::QuotaDetail;
use berth_shared::validation::FieldErrors;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("invalid input: {0:?}")]
    Invalid(FieldErrors),
    #[error("over quota: {0:?}")]
    OverQuota(QuotaDetail),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("container is not running: {0}")]
    NotRunning(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A wait ran out before what it waited for happened.
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Error {
    pub fn invalid(field: &str, msg: impl Into<String>) -> Error {
        let mut e = FieldErrors::default();
        e.add(field, msg);
        Error::Invalid(e)
    }

    pub fn over_quota(dimension: &str, requested: u64, max: u64) -> Error {
        Error::OverQuota(QuotaDetail {
            dimension: dimension.into(),
            requested,
            max,
        })
    }
}
