//! Object stores: where captures, shards, results and status live. [`LocalStore`] is a
//! directory (the embedded default); the S3 store of the functions implements the same trait.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::PipelineError;

/// A flat key → bytes store with `/`-separated keys.
pub trait Store: Send + Sync {
    /// Stream an object (never the whole object in memory).
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, PipelineError>;
    /// Read a whole (small) object.
    fn get(&self, key: &str) -> Result<Vec<u8>, PipelineError> {
        let mut v = Vec::new();
        self.open(key)?
            .read_to_end(&mut v)
            .map_err(|e| PipelineError::Store(key.to_string(), e.to_string()))?;
        Ok(v)
    }
    /// Write an object whole, replacing any object of that key (readers never see half of it).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), PipelineError>;
    /// Write several objects (each as [`Store::put`]). Stores override it to write them
    /// concurrently (S3: many small PUTs are bound by round trips, not bandwidth). All are
    /// attempted; the first error is returned.
    fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), PipelineError> {
        let mut first = None;
        for (key, bytes) in objects {
            if let Err(e) = self.put(&key, &bytes) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
    /// Whether an object exists.
    fn exists(&self, key: &str) -> Result<bool, PipelineError>;
    /// Keys under a prefix, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, PipelineError>;
    /// The next `/`-separated part of every key under `prefix` (which ends with `/`), sorted
    /// and deduplicated: for `captures/`, the capture ids. Stores override it to avoid
    /// listing every key (S3: a delimiter listing; a directory: one `read_dir`).
    fn children(&self, prefix: &str) -> Result<Vec<String>, PipelineError> {
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
    fn delete(&self, key: &str) -> Result<(), PipelineError>;
}

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

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, PipelineError> {
        if key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(PipelineError::Store(
                key.to_string(),
                "not a valid key (empty, absolute, or with an empty, '.' or '..' part)".into(),
            ));
        }
        Ok(self.root.join(key))
    }
}

impl Store for LocalStore {
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, PipelineError> {
        let p = self.path(key)?;
        let f = std::fs::File::open(&p)
            .map_err(|e| PipelineError::Store(key.to_string(), e.to_string()))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, f)))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), PipelineError> {
        let p = self.path(key)?;
        let err = |e: std::io::Error| PipelineError::Store(key.to_string(), e.to_string());
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        // Write beside, then rename: a reader sees the old object or the new one, whole.
        let tmp = p.with_file_name(format!(
            ".{}.{}.tmp",
            p.file_name().and_then(|n| n.to_str()).unwrap_or("object"),
            std::process::id()
        ));
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &p).map_err(err)
    }

    fn exists(&self, key: &str) -> Result<bool, PipelineError> {
        Ok(self.path(key)?.is_file())
    }

    fn delete(&self, key: &str) -> Result<(), PipelineError> {
        match std::fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(PipelineError::Store(key.to_string(), e.to_string()))
            }
            _ => Ok(()),
        }
    }

    fn children(&self, prefix: &str) -> Result<Vec<String>, PipelineError> {
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

    fn list(&self, prefix: &str) -> Result<Vec<String>, PipelineError> {
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
        assert!(matches!(s.get("nope"), Err(PipelineError::Store(..))));
    }
}
