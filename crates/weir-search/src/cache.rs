//! The parts a search reads, kept in memory between searches (what makes a warm search fast:
//! nothing is listed, fetched or decoded again), and how each is known to be still current.
//!
//! - A capture whose status is final (done, done with warnings, failed) does not change
//!   until its upload is replaced, which rewrites its status: its list of parts is kept and
//!   trusted for [`RECHECK`], then its status object is read again (one small GET) and the
//!   list kept while its version is the same. Its parts are kept under that version.
//! - A capture still moving (or one with no status) is listed on every search and each part
//!   is kept under its own object version (a stat, or a HEAD), since shards land under it.
//!
//! Parts are evicted least recently used first when they hold more than the budget
//! ([`default_budget`]: a quarter of the machine's memory, or `WEIR_SEARCH_CACHE_MB`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use weir_pipeline::{partition_range, search_prefix, status_key, Status, Store, SEARCH_COLUMNS};

use crate::part::{Dicts, Part};
use crate::SearchError;

/// How long a final capture's list of parts is used without looking at its status again.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Bytes of parts kept: `WEIR_SEARCH_CACHE_MB`, else a quarter of the machine's memory
/// (`/proc/meminfo`), else 1 GiB.
pub fn default_budget() -> usize {
    if let Some(mb) = std::env::var("WEIR_SEARCH_CACHE_MB")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return mb << 20;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024 / 4)
        })
        .unwrap_or(1 << 30)
}

/// What is known of one capture's parts.
struct Snapshot {
    /// Its status object's version when listed (None: it had none).
    status: Option<String>,
    /// Whether that status was final.
    fixed: bool,
    /// Its parts' keys, in listing order.
    keys: Vec<String>,
    /// When the status was last looked at.
    checked: Instant,
}

struct Entry {
    /// Under what it was read: the capture's status version (final captures) or the part's
    /// own version.
    tag: String,
    part: Arc<Part>,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    snapshots: HashMap<String, Snapshot>,
    parts: HashMap<String, Entry>,
    bytes: usize,
    tick: u64,
}

/// The parts of every capture searched so far.
pub(crate) struct Cache {
    budget: usize,
    inner: Mutex<Inner>,
    pub dicts: RwLock<Dicts>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cache {
    pub fn new(budget: usize) -> Cache {
        Cache {
            budget,
            inner: Mutex::default(),
            dicts: RwLock::default(),
        }
    }

    /// The dictionaries, to read.
    pub fn dicts(&self) -> std::sync::RwLockReadGuard<'_, Dicts> {
        self.dicts.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes of parts held now.
    pub fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }

    /// A capture's part keys and the tag each must be kept under (`None`: look up each
    /// part's own version).
    fn keys(
        &self,
        store: &dyn Store,
        id: &str,
    ) -> Result<(Vec<String>, Option<String>), SearchError> {
        {
            let g = lock(&self.inner);
            if let Some(s) = g.snapshots.get(id) {
                if s.fixed && s.checked.elapsed() < RECHECK {
                    return Ok((s.keys.clone(), s.status.clone()));
                }
            }
        }
        let status = store.get_versioned(&status_key(id))?;
        let version = status.as_ref().map(|(_, v)| v.clone());
        let fixed = status.as_ref().is_some_and(|(b, _)| {
            serde_json::from_slice::<Status>(b).is_ok_and(|s| s.state.is_final())
        });
        {
            let mut g = lock(&self.inner);
            if let Some(s) = g.snapshots.get_mut(id) {
                if fixed && s.fixed && s.status == version {
                    s.checked = Instant::now();
                    return Ok((s.keys.clone(), s.status.clone()));
                }
            }
        }
        let prefix = search_prefix(id);
        let keys: Vec<String> = store
            .list(&prefix)?
            .into_iter()
            .filter(|k| k.ends_with(".parquet"))
            .collect();
        let tag = if fixed { version.clone() } else { None };
        lock(&self.inner).snapshots.insert(
            id.to_string(),
            Snapshot {
                status: version,
                fixed,
                keys: keys.clone(),
                checked: Instant::now(),
            },
        );
        Ok((keys, tag))
    }

    /// Every part of `captures` (in their order, each in listing order) whose partition
    /// starts before `to`, read from the store if not held or no longer current.
    pub fn parts(
        &self,
        store: &dyn Store,
        captures: &[String],
        to: i64,
    ) -> Result<Vec<Arc<Part>>, SearchError> {
        let mut wanted: Vec<(String, String, String)> = Vec::new(); // (capture, key, tag)
        let mut unversioned: Vec<(usize, String)> = Vec::new();
        for id in captures {
            let (keys, tag) = self.keys(store, id)?;
            let prefix = search_prefix(id);
            for key in keys {
                let partition = key[prefix.len()..].split('/').next().unwrap_or_default();
                // A partition wholly after the range is not read at all. (A flow may last
                // past its partition's end: the range's start is checked per row.)
                if partition_range(partition).is_some_and(|(start, _)| start >= to) {
                    continue;
                }
                if tag.is_none() {
                    unversioned.push((wanted.len(), key.clone()));
                }
                let t = tag.as_ref().map(|v| format!("s:{v}")).unwrap_or_default();
                wanted.push((id.clone(), key, t));
            }
        }
        // Parts of captures still moving: their own versions (one stat or HEAD each).
        let versions: Vec<(usize, Option<String>)> = unversioned
            .par_iter()
            .map(|(i, key)| Ok((*i, store.version(key)?)))
            .collect::<Result<_, SearchError>>()?;
        for (i, v) in versions {
            wanted[i].2 = format!("v:{}", v.unwrap_or_default());
        }
        let mut found: Vec<Option<Arc<Part>>> = {
            let mut g = lock(&self.inner);
            g.tick += 1;
            let tick = g.tick;
            wanted
                .iter()
                .map(|(_, key, tag)| {
                    let e = g.parts.get_mut(key).filter(|e| &e.tag == tag)?;
                    e.used = tick;
                    Some(e.part.clone())
                })
                .collect()
        };
        let missing: Vec<usize> = (0..wanted.len()).filter(|&i| found[i].is_none()).collect();
        let loaded: Vec<(usize, Option<Arc<Part>>)> = missing
            .par_iter()
            .map(|&i| {
                let (id, key, _) = &wanted[i];
                Ok((i, self.load(store, id, key)?))
            })
            .collect::<Result<_, SearchError>>()?;
        let mut g = lock(&self.inner);
        let tick = g.tick;
        for (i, part) in loaded {
            let Some(part) = part else { continue };
            let (_, key, tag) = &wanted[i];
            let bytes = part.bytes();
            if let Some(old) = g.parts.insert(
                key.clone(),
                Entry {
                    tag: tag.clone(),
                    part: part.clone(),
                    bytes,
                    used: tick,
                },
            ) {
                g.bytes -= old.bytes;
            }
            g.bytes += bytes;
            found[i] = Some(part);
        }
        // Least recently used out first; the parts of this search stay in use anyway.
        if g.bytes > self.budget {
            let mut by_age: Vec<(u64, String)> =
                g.parts.iter().map(|(k, e)| (e.used, k.clone())).collect();
            by_age.sort();
            for (_, k) in by_age {
                if g.bytes <= self.budget {
                    break;
                }
                if let Some(e) = g.parts.remove(&k) {
                    g.bytes -= e.bytes;
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// One part from the store: `None` when it went away since the listing (a capture being
    /// replaced).
    fn load(
        &self,
        store: &dyn Store,
        id: &str,
        key: &str,
    ) -> Result<Option<Arc<Part>>, SearchError> {
        let bytes = match store.get(key) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let data = |reason: String| SearchError::Data {
            key: key.to_string(),
            reason,
        };
        let df = weir_records::parquet_to_frame_serial(&bytes).map_err(|e| data(e.to_string()))?;
        if let Some(c) = SEARCH_COLUMNS.iter().find(|c| !df.schema().contains(c)) {
            return Err(data(format!("it has no column {c:?}")));
        }
        let part = Part::new(id, df, &self.dicts).map_err(|e| data(e.to_string()))?;
        Ok(Some(Arc::new(part)))
    }
}
