//! [`FaultyStore`]: a store that fails on purpose, the way S3 does under ordinary failures
//! (a connection reset inside a ranged read, an object overwritten while it is read, another
//! writer landing between a read and a write). The failure handling of the stages and of
//! the handlers is tested with it (weir-pipeline's, weir-aws's and weir-fl's tests), over a real
//! directory.

use std::io::Read;
use std::sync::Mutex;

use crate::{Condition, LocalStore, Store, StoreError, StoreFault, StoreIoError};

/// Something to run at the moment a fault fires, against the store underneath.
pub type Hook = Box<dyn FnOnce(&LocalStore) + Send>;

/// A [`LocalStore`] with failures injected; every call not armed passes through.
pub struct FaultyStore {
    /// The store underneath.
    pub inner: LocalStore,
    read_fault: Mutex<Option<ReadFault>>,
    replace: Mutex<Option<(String, u64, Vec<u8>)>>,
    before_put_if: Mutex<Option<(String, Hook)>>,
    deleted: Mutex<Vec<String>>,
}

struct ReadFault {
    key: String,
    at: u64,
    times: u32,
    fault: StoreFault,
}

impl FaultyStore {
    /// Over a directory.
    pub fn new(inner: LocalStore) -> Self {
        FaultyStore {
            inner,
            read_fault: Mutex::new(None),
            replace: Mutex::new(None),
            before_put_if: Mutex::new(None),
            deleted: Mutex::new(Vec::new()),
        }
    }

    /// Streamed reads of `key` fail with `fault` once they reach byte `at`, the next `times`
    /// times (a reset connection, a timeout: what is left after the SDK's own retries).
    pub fn fail_reads(&self, key: &str, at: u64, times: u32, fault: StoreFault) {
        *lock(&self.read_fault) = Some(ReadFault {
            key: key.into(),
            at,
            times,
            fault,
        });
    }

    /// When a streamed read of `key` reaches byte `at`, the object is overwritten in place
    /// with `bytes` (a new upload under the same key while the splitter reads the old one).
    pub fn replace_during_read(&self, key: &str, at: u64, bytes: Vec<u8>) {
        *lock(&self.replace) = Some((key.into(), at, bytes));
    }

    /// The next conditional write of `key` first runs `hook` on the store underneath: another
    /// writer that read later but wrote sooner.
    pub fn before_next_put_if(&self, key: &str, hook: Hook) {
        *lock(&self.before_put_if) = Some((key.into(), hook));
    }

    /// Every key deleted through this store so far.
    pub fn deleted(&self) -> Vec<String> {
        lock(&self.deleted).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct FaultyReader<'a> {
    inner: Box<dyn Read + Send + 'a>,
    store: &'a FaultyStore,
    key: String,
    pos: u64,
}

impl Read for FaultyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut len = buf.len();
        {
            let mut f = lock(&self.store.read_fault);
            if let Some(rf) = f.as_mut().filter(|rf| rf.key == self.key && rf.times > 0) {
                if self.pos >= rf.at {
                    rf.times -= 1;
                    return Err(StoreIoError::into_io(
                        rf.fault,
                        format!("injected fault reading {} at byte {}", self.key, self.pos),
                    ));
                }
                // Everything before the fault is delivered first.
                len = len.min((rf.at - self.pos) as usize);
            }
        }
        {
            let mut r = lock(&self.store.replace);
            if let Some((_, at, _)) = r.as_ref().filter(|(k, _, _)| *k == self.key) {
                if self.pos >= *at {
                    let (k, _, bytes) = r.take().expect("checked");
                    // In place (same file), as an overwrite lands under a reader on S3.
                    std::fs::write(self.store.inner.path_of(&k), bytes)?;
                } else {
                    len = len.min((*at - self.pos) as usize);
                }
            }
        }
        let n = self.inner.read(&mut buf[..len])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Store for FaultyStore {
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        Ok(Box::new(FaultyReader {
            inner: self.inner.open(key)?,
            store: self,
            key: key.into(),
            pos: 0,
        }))
    }
    fn version(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.version(key)
    }
    fn open_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        Ok(Box::new(FaultyReader {
            inner: self.inner.open_version(key, version)?,
            store: self,
            key: key.into(),
            pos: 0,
        }))
    }
    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        self.inner.get_versioned(key)
    }
    fn put_if(&self, key: &str, bytes: &[u8], cond: &Condition) -> Result<bool, StoreError> {
        let hook = {
            let mut h = lock(&self.before_put_if);
            match h.as_ref() {
                Some((k, _)) if k == key => h.take().map(|(_, f)| f),
                _ => None,
            }
        };
        if let Some(f) = hook {
            f(&self.inner);
        }
        self.inner.put_if(key, bytes, cond)
    }
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, bytes)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.exists(key)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.inner.size(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list(prefix)
    }
    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.children(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.deleted).push(key.to_string());
        self.inner.delete(key)
    }
}
