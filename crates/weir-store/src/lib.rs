//! # weir-store
//!
//! Where captures, shards, results, status and the model registry live: the [`Store`] trait
//! (a flat key → bytes store with `/`-separated keys, pinned reads and compare-and-swap),
//! [`LocalStore`] (a directory: the embedded default) and [`faults::FaultyStore`] (a
//! directory that fails the way S3 does, for tests). The S3 store implements the same trait
//! in weir-aws. Errors are typed by what a caller must do about them ([`StoreFault`]).
//!
//! Owns: the store contract and its directory implementation. Must not depend on any other
//! weir crate, a data-frame library or an inference runtime: everything that stores
//! something (the pipeline, search, the API, federated learning) depends on this, so it
//! stays small.
#![warn(missing_docs)]

pub mod faults;
mod local;

use std::io::Read;
use std::path::Path;

pub use local::{file_version, LocalStore};

/// Why a store operation failed, by what a caller should do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFault {
    /// There is no such object.
    NotFound,
    /// The object is not the version the read was pinned to, or a conditional write's
    /// condition no longer holds (HTTP 412 / 409 on S3).
    Changed,
    /// Temporary: network, timeout, throttling, a server error. Trying again may work.
    Transient,
    /// Trying again will not help (an invalid key, access denied, a local disk error that is
    /// not about space).
    Permanent,
}

/// A store operation that failed for a key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct StoreError {
    /// The object (or queue) concerned.
    pub key: String,
    /// What kind of failure.
    pub fault: StoreFault,
    /// What the store said.
    pub reason: String,
}

impl StoreError {
    /// A store error.
    pub fn new(key: impl Into<String>, fault: StoreFault, reason: impl ToString) -> Self {
        StoreError {
            key: key.into(),
            fault,
            reason: reason.to_string(),
        }
    }

    /// What kind of failure.
    pub fn fault(&self) -> StoreFault {
        self.fault
    }

    /// There is no such object.
    pub fn is_not_found(&self) -> bool {
        self.fault == StoreFault::NotFound
    }
}

/// An I/O error from a reader the store handed out: the store's own error when it wrapped
/// one ([`StoreIoError`]), else a transient failure.
pub fn from_io(key: &str, e: &std::io::Error) -> StoreError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<StoreIoError>()) {
        return StoreError::new(key, inner.fault, &inner.reason);
    }
    let fault = match e.kind() {
        std::io::ErrorKind::NotFound => StoreFault::NotFound,
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput => {
            StoreFault::Permanent
        }
        _ => StoreFault::Transient,
    };
    StoreError::new(key, fault, e)
}

/// A store failure carried through `std::io::Read` (a capture reader sees only I/O errors).
#[derive(Debug)]
pub struct StoreIoError {
    /// What kind of failure.
    pub fault: StoreFault,
    /// What the store said.
    pub reason: String,
}

impl std::fmt::Display for StoreIoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for StoreIoError {}

impl StoreIoError {
    /// As an `io::Error` a reader returns.
    pub fn into_io(fault: StoreFault, reason: impl ToString) -> std::io::Error {
        std::io::Error::other(StoreIoError {
            fault,
            reason: reason.to_string(),
        })
    }
}

/// The condition of a conditional write ([`Store::put_if`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Only if there is no object under the key (`If-None-Match: *`).
    Absent,
    /// Only if the object is still this version, as [`Store::get_versioned`] gave it
    /// (`If-Match: ETAG`).
    Version(String),
}

/// A flat key → bytes store with `/`-separated keys.
///
/// Versions: [`Store::version`] / [`Store::open_version`] pin a streamed read to one version
/// of an object (S3: its ETag, each ranged GET `If-Match`); [`Store::get_versioned`] /
/// [`Store::put_if`] are compare-and-swap on small objects (status). On S3 both are the ETag;
/// a directory uses size, time and inode for the first and a hash of the bytes for the second.
pub trait Store: Send + Sync {
    /// Stream an object (never the whole object in memory).
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, StoreError>;
    /// The object's current version, `None` when there is no such object.
    fn version(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stream the object as it was at `version`: a read that meets another version fails
    /// with [`StoreFault::Changed`] (through the reader's `io::Error`, see
    /// [`StoreIoError`]), never mixing the bytes of two versions.
    fn open_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError>;
    /// Read a whole (small) object.
    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let mut v = Vec::new();
        self.open(key)?
            .read_to_end(&mut v)
            .map_err(|e| from_io(key, &e))?;
        Ok(v)
    }
    /// Read a whole (small) object with its version for [`Store::put_if`]; `None` when there
    /// is no such object.
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError>;
    /// Write an object only if `cond` holds, atomically with the check. `Ok(false)` when it
    /// did not hold (another writer came first: read again and decide again).
    fn put_if(&self, key: &str, bytes: &[u8], cond: &Condition) -> Result<bool, StoreError>;
    /// Write an object whole, replacing any object of that key (readers never see half of it).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Write an object from a file, replacing any object of that key, streamed where the
    /// store can (a directory copies it, S3 sends it from the file): an upload of a gigabyte
    /// is never a gigabyte in memory. The default reads it whole.
    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        let bytes = std::fs::read(path).map_err(|e| from_io(key, &e))?;
        self.put(key, &bytes)
    }
    /// Write several objects (each as [`Store::put`]). Stores override it to write them
    /// concurrently (S3: many small PUTs are bound by round trips, not bandwidth). All are
    /// attempted; the first error is returned.
    fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        let mut first = None;
        for (key, bytes) in objects {
            if let Err(e) = self.put(&key, &bytes) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
    /// Whether an object exists.
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// An object's size in bytes without reading it (S3: a HEAD), `None` when there is no
    /// such object: what a reader of attacker-written objects checks before it reads one.
    fn size(&self, key: &str) -> Result<Option<u64>, StoreError>;
    /// Read a whole object of at most `limit` bytes: its size is checked first and the read
    /// stops past `limit` (an object replaced by a larger one between the two is refused too,
    /// never read whole). `Ok(Err(size))` when it is larger; `Ok(Ok(None))` when absent.
    #[allow(clippy::type_complexity)]
    fn get_at_most(
        &self,
        key: &str,
        limit: u64,
    ) -> Result<Result<Option<Vec<u8>>, u64>, StoreError> {
        match self.size(key)? {
            None => return Ok(Ok(None)),
            Some(n) if n > limit => return Ok(Err(n)),
            Some(_) => {}
        }
        let mut v = Vec::new();
        self.open(key)?
            .take(limit + 1)
            .read_to_end(&mut v)
            .map_err(|e| from_io(key, &e))?;
        if v.len() as u64 > limit {
            return Ok(Err(v.len() as u64));
        }
        Ok(Ok(Some(v)))
    }
    /// Keys under a prefix, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// The next `/`-separated part of every key under `prefix` (which ends with `/`), sorted
    /// and deduplicated: for `captures/`, the capture ids. Stores override it to avoid
    /// listing every key (S3: a delimiter listing; a directory: one `read_dir`).
    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = self
            .list(prefix)?
            .iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter_map(|rest| rest.split('/').next())
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        out.dedup();
        Ok(out)
    }
    /// Remove an object; removing one that is not there is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}
