//! [`LocalStore`]: a directory as an object store (the embedded default).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{from_io, Condition, Store, StoreError, StoreFault, StoreIoError};

/// A directory as an object store: key `a/b/c` is the file `ROOT/a/b/c`.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    /// The file of a key (for tests that damage objects behind the store's back); an invalid
    /// key maps to the root.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.path(key).unwrap_or_else(|_| self.root.clone())
    }

    /// The metadata of a key's file, `None` when there is none (or it is not a file).
    fn file(&self, key: &str) -> Result<Option<std::fs::Metadata>, StoreError> {
        match std::fs::metadata(self.path(key)?) {
            Ok(m) if m.is_file() => Ok(Some(m)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(from_io(key, &e)),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(StoreError::new(
                key,
                StoreFault::Permanent,
                "not a valid key (empty, absolute, or with an empty, '.' or '..' part)",
            ));
        }
        Ok(self.root.join(key))
    }
}

impl LocalStore {
    /// Replace the object of `key` with what `fill` writes into a file beside it, then rename:
    /// a reader sees the old object or the new one, whole.
    fn replace(
        &self,
        key: &str,
        fill: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<(), StoreError> {
        let p = self.path(key)?;
        let err = |e: std::io::Error| from_io(key, &e);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = p.with_file_name(format!(
            ".{}.{}.tmp",
            p.file_name().and_then(|n| n.to_str()).unwrap_or("object"),
            std::process::id()
        ));
        fill(&tmp).map_err(err)?;
        std::fs::rename(&tmp, &p).map_err(err)
    }
}

/// A file's version for pinned reads: size, modification time and inode.
pub fn file_version(m: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!("{}-{}.{}-{}", m.len(), m.mtime(), m.mtime_nsec(), m.ino())
}

/// A small object's version for compare-and-swap: a hash of its bytes (FNV-1a, 64 bits).
fn content_version(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("h{h:016x}-{}", bytes.len())
}

/// A file read pinned to the version it had when opened: checked every 8 MiB and at the end.
struct PinnedFile {
    file: std::io::BufReader<std::fs::File>,
    version: String,
    since_check: u64,
}

impl PinnedFile {
    fn check(&self) -> std::io::Result<()> {
        let now = file_version(&self.file.get_ref().metadata()?);
        if now != self.version {
            return Err(StoreIoError::into_io(
                StoreFault::Changed,
                format!(
                    "the file changed while it was read (version {} became {now})",
                    self.version
                ),
            ));
        }
        Ok(())
    }
}

impl Read for PinnedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.since_check += n as u64;
        if n == 0 || self.since_check >= 8 << 20 {
            self.since_check = 0;
            self.check()?;
        }
        Ok(n)
    }
}

impl Store for LocalStore {
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        let p = self.path(key)?;
        let f = std::fs::File::open(&p).map_err(|e| from_io(key, &e))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
    }

    fn version(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.file(key)?.map(|m| file_version(&m)))
    }

    fn open_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        let f = std::fs::File::open(self.path(key)?).map_err(|e| from_io(key, &e))?;
        let r = PinnedFile {
            file: std::io::BufReader::with_capacity(1 << 20, f),
            version: version.to_string(),
            since_check: 0,
        };
        r.check().map_err(|e| from_io(key, &e))?;
        Ok(Box::new(r))
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        match std::fs::read(self.path(key)?) {
            Ok(b) => {
                let v = content_version(&b);
                Ok(Some((b, v)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(from_io(key, &e)),
        }
    }

    fn put_if(&self, key: &str, bytes: &[u8], cond: &Condition) -> Result<bool, StoreError> {
        let path = self.path(key)?;
        std::fs::create_dir_all(&self.root).map_err(|e| from_io(key, &e))?;
        // One lock for every conditional write of the store, across processes.
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".weir-lock"))
            .map_err(|e| from_io(key, &e))?;
        lock.lock().map_err(|e| from_io(key, &e))?;
        let now = match std::fs::read(&path) {
            Ok(b) => Some(content_version(&b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(from_io(key, &e)),
        };
        let holds = match cond {
            Condition::Absent => now.is_none(),
            Condition::Version(v) => now.as_deref() == Some(v.as_str()),
        };
        if holds {
            self.put(key, bytes)?;
        }
        Ok(holds)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.replace(key, |tmp| std::fs::write(tmp, bytes))
    }

    fn put_file(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        self.replace(key, |tmp| std::fs::copy(path, tmp).map(|_| ()))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.path(key)?.is_file())
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.file(key)?.map(|m| m.len()))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match std::fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(from_io(key, &e)),
            _ => Ok(()),
        }
    }

    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = match prefix.trim_end_matches('/') {
            "" => self.root.clone(),
            p => self.path(p)?,
        };
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.sort();
        Ok(out)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        // Walk from the deepest directory the prefix names, not the whole store.
        let dir = match prefix.rfind('/') {
            Some(i) => self.path(&prefix[..i])?,
            None => self.root.clone(),
        };
        let mut stack = vec![dir];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    let key = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/");
                    if key.starts_with(prefix) {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_and_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        s.put("captures/a/shards/00001.parquet", b"one").unwrap();
        s.put("captures/a/status.json", b"{}").unwrap();
        s.put("captures/a/status.json", b"{\"x\":1}").unwrap();
        assert_eq!(s.get("captures/a/status.json").unwrap(), b"{\"x\":1}");
        assert!(s.exists("captures/a/shards/00001.parquet").unwrap());
        assert!(!s.exists("captures/b/status.json").unwrap());
        assert_eq!(
            s.list("captures/a/").unwrap(),
            ["captures/a/shards/00001.parquet", "captures/a/status.json"]
        );
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a"] {
            assert!(s.put(bad, b"x").is_err(), "{bad}");
        }
        assert_eq!(s.get("nope").unwrap_err().fault(), StoreFault::NotFound);
        assert_eq!(
            s.put("a/../b", b"x").unwrap_err().fault(),
            StoreFault::Permanent
        );
    }

    #[test]
    fn conditional_writes_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        assert!(s.put_if("k", b"one", &Condition::Absent).unwrap());
        assert!(!s.put_if("k", b"two", &Condition::Absent).unwrap());
        let (b, v) = s.get_versioned("k").unwrap().unwrap();
        assert_eq!(b, b"one");
        assert!(s
            .put_if("k", b"two", &Condition::Version(v.clone()))
            .unwrap());
        // The version read before the last write is stale now.
        assert!(!s.put_if("k", b"three", &Condition::Version(v)).unwrap());
        assert_eq!(s.get("k").unwrap(), b"two");
        assert!(s.get_versioned("none").unwrap().is_none());
        assert!(s.list("").unwrap().iter().all(|k| !k.contains("lock")));
    }

    #[test]
    fn a_pinned_read_fails_when_the_file_changes_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path());
        let big = vec![7u8; 20 << 20];
        s.put("c.pcap", &big).unwrap();
        let v = s.version("c.pcap").unwrap().unwrap();
        let mut whole = Vec::new();
        s.open_version("c.pcap", &v)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole.len(), big.len());
        let mut r = s.open_version("c.pcap", &v).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        r.read_exact(&mut buf).unwrap();
        // Rewritten in place (same inode, other bytes and length).
        std::fs::write(dir.path().join("c.pcap"), vec![9u8; 21 << 20]).unwrap();
        let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert_eq!(from_io("c.pcap", &e).fault(), StoreFault::Changed, "{e}");
        assert!(s.open_version("c.pcap", &v).is_err());
        assert_eq!(s.version("gone").unwrap(), None);
    }
}
