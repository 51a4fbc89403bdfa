//! Store methods for XEP-0363 HTTP File Upload (SQL in `sqlite/upload.rs`): granted slots and stored files with
//! their owner, which is what per-account quotas and daily limits are computed from. The bytes live on disk; the
//! store knows only their metadata.

use crate::{Store, StoreError};

/// A slot request as the server checked it, with the limits to apply in the same transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotRequest {
    /// The new slot's id (random, unguessable; chosen by the server).
    pub slot: String,
    pub owner: String,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub now_ms: i64,
    /// Bytes the owner may hold (stored files plus open slots); 0 = no limit.
    pub quota_bytes: u64,
    /// Bytes the owner may request per day; 0 = no limit.
    pub daily_bytes: u64,
    /// Slots granted before this instant and never uploaded have lapsed: they no longer count against the quota.
    pub pending_since_ms: i64,
    /// Start of the daily window.
    pub day_since_ms: i64,
}

/// The answer to a slot request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotGrant {
    /// Stored as an open slot.
    Granted,
    /// The owner already holds `used` bytes: this file would pass the quota.
    OverQuota { used: u64 },
    /// The owner requested `used` bytes within the day: this file would pass the daily limit.
    OverDaily { used: u64 },
}

/// A slot, or once `complete` a stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadFile {
    pub slot: String,
    pub owner: String,
    pub filename: String,
    pub size: u64,
    pub content_type: String,
    pub created_ms: i64,
    /// The upload finished and the file is in place.
    pub complete: bool,
}

impl Store {
    /// Grants a slot unless it would pass the owner's quota or daily limit (checked and inserted in one
    /// transaction). [`StoreError::NoSuchAccount`] without the account; [`StoreError::AlreadyExists`] never
    /// happens for random ids but is what a reused id gives.
    pub async fn upload_slot_grant(&self, request: &SlotRequest) -> Result<SlotGrant, StoreError> {
        match self {
            Store::Sqlite(s) => s.upload_slot_grant(request).await,
        }
    }

    /// The slot or file with this id.
    pub async fn upload_file(&self, slot: &str) -> Result<Option<UploadFile>, StoreError> {
        match self {
            Store::Sqlite(s) => s.upload_file(slot).await,
        }
    }

    /// Marks a slot's upload as complete; `false` if it does not exist or already was.
    pub async fn upload_complete(&self, slot: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.upload_complete(slot).await,
        }
    }

    /// Up to `limit` entries to purge, oldest first: files stored before `files_before_ms` (`None`: files never
    /// expire) and slots granted before `slots_before_ms` that were never uploaded.
    pub async fn upload_expired(
        &self,
        files_before_ms: Option<i64>,
        slots_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<UploadFile>, StoreError> {
        match self {
            Store::Sqlite(s) => s.upload_expired(files_before_ms, slots_before_ms, limit).await,
        }
    }

    /// Forgets these slots/files; returns how many existed.
    pub async fn upload_remove(&self, slots: &[String]) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(s) => s.upload_remove(slots).await,
        }
    }

    /// (files, bytes) an account has stored.
    pub async fn upload_usage(&self, owner: &str) -> Result<(u64, u64), StoreError> {
        match self {
            Store::Sqlite(s) => s.upload_usage(owner).await,
        }
    }
}
