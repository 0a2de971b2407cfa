//! # weir-search
//!
//! Owns: the query language and the embedded search engine. Must not depend on: an inference
//! runtime, AWS.
//!
//! Search over weir's results, the one implementation the web app's pages and its JSON API
//! call: the query language ([`Query`], with errors that point at the mistake), filters over
//! the search layout the classifiers write (`captures/ID/flows/{day,month,year}=P/part-N.parquet`,
//! see `weir_pipeline::write_search`), a time range that skips whole partitions by name, sort
//! by any column, and paging.
//!
//! It reads any [`Store`]: a data directory of `weir analyze` or the bucket of the functions.
//! A [`Searcher`] keeps the parts it has read in memory, decoded into the columns a query
//! needs ([`cache`] says how it knows they are current), so that a search after the first
//! one reads nothing: it decides the query a column at a time over every part (in parallel),
//! counts the overview from the same hits, and finds the page by counting rather than by
//! sorting the result (`select`), as fast deep into the results as on the first page.

pub mod cache;
mod eval;
mod overview;
mod part;
mod query;
mod select;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use weir_wire::columns as col;

use polars::prelude::*;
use rayon::prelude::*;
use weir_pipeline::{PipelineError, Store, SEARCH_COLUMNS};

pub use eval::matches;
pub use overview::{overview, Bin, Overview, Profile, BINS, TOP, TOP_FIELDS};
pub use query::{
    Expr, Field, Op, ParseError, Query, Term, Value, MAX_NESTING, MAX_QUERY_BYTES, MAX_TERMS,
};

/// Most rows one page may hold.
pub const MAX_LIMIT: usize = 10_000;

/// What to search.
#[derive(Clone, Debug)]
pub struct Search {
    /// Capture ids; empty: every capture in the store.
    pub captures: Vec<String>,
    /// The filter.
    pub query: Query,
    /// Flows active at or after this time (ns since the epoch, UTC).
    pub from_ns: Option<i64>,
    /// Flows that started before this time.
    pub to_ns: Option<i64>,
    /// Sort column (one of [`SEARCH_COLUMNS`] or `capture`) and whether descending; default
    /// `first_ts` ascending.
    pub sort: Option<(String, bool)>,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return (at most [`MAX_LIMIT`]).
    pub limit: usize,
}

impl Default for Search {
    fn default() -> Self {
        Search {
            captures: Vec::new(),
            query: Query::default(),
            from_ns: None,
            to_ns: None,
            sort: None,
            offset: 0,
            limit: 100,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct Page {
    /// Matching flows in all.
    pub total: usize,
    /// The first row's position among them.
    pub offset: usize,
    /// The rows: `capture`, then the search layout's columns ([`SEARCH_COLUMNS`], `shard`,
    /// `row`).
    pub rows: DataFrame,
    /// The time histogram and top values of every matching row.
    pub overview: Overview,
}

impl From<weir_pipeline::StoreError> for SearchError {
    fn from(e: weir_pipeline::StoreError) -> Self {
        SearchError::Store(e.into())
    }
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is wrong (says what to change): a 400, never a 500.
    #[error("{0}")]
    BadRequest(String),
    /// What the request names is not there (a capture, a shard, a row): a 404.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PipelineError),

    /// A part could not be read.
    #[error("reading {key}: {reason}")]
    Data {
        /// The part.
        key: String,
        /// What polars said.
        reason: String,
    },
}

impl SearchError {
    /// Working on the matching rows failed.
    fn results(e: PolarsError) -> SearchError {
        SearchError::Data {
            key: "results".into(),
            reason: e.to_string(),
        }
    }
}

/// Searches over one store, with the parts read so far kept in memory.
pub struct Searcher {
    store: Arc<dyn Store>,
    cache: cache::Cache,
    /// The last few result sets: paging through a result or sorting it another way keeps
    /// its filter, so its hits and overview are not worked out again while its parts are
    /// the same.
    recent: Mutex<VecDeque<Arc<Found>>>,
}

/// Result sets kept in [`Searcher::recent`].
const RECENT: usize = 4;

/// The rows a filter (captures, query, time range) matches in a set of parts.
struct Found {
    filter: String,
    parts: Vec<Arc<part::Part>>,
    hits: Vec<Vec<u32>>,
    overview: OnceLock<Overview>,
}

impl Searcher {
    /// A searcher over `store` keeping [`cache::default_budget`] bytes of parts.
    pub fn new(store: Arc<dyn Store>) -> Searcher {
        Searcher::with_budget(store, cache::default_budget())
    }

    /// A searcher keeping at most `bytes` of parts (least recently used out first).
    pub fn with_budget(store: Arc<dyn Store>, bytes: usize) -> Searcher {
        Searcher {
            store,
            cache: cache::Cache::new(bytes),
            recent: Mutex::default(),
        }
    }

    /// The store it searches.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Bytes of parts held in memory now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Run a search: every part of the chosen captures whose partition overlaps the time
    /// range, filtered by time and query, one page of them in the order asked, and the
    /// overview of all of them.
    pub fn search(&self, req: &Search) -> Result<Page, SearchError> {
        if req.limit == 0 || req.limit > MAX_LIMIT {
            return Err(SearchError::BadRequest(format!(
                "limit {} is not between 1 and {MAX_LIMIT}",
                req.limit
            )));
        }
        let run = self.hits(req)?;
        let d = self.cache.dicts();
        let f = &run.found;
        let overview = f
            .overview
            .get_or_init(|| overview::overview_of(&f.parts, &f.hits, &d))
            .clone();
        let rows = run.page(&d, req.offset, req.limit)?;
        Ok(Page {
            total: run.total(),
            offset: req.offset,
            rows,
            overview,
        })
    }

    /// How the matching rows' anomaly percentiles and models spread (`offset`, `limit`
    /// and the sort ignored), without cutting any rows out.
    pub fn profile(&self, req: &Search) -> Result<Profile, SearchError> {
        let run = self.hits(req)?;
        overview::profile_of(&run.found.parts, &run.found.hits).map_err(SearchError::results)
    }

    /// Every matching row, sorted (`offset` and `limit` ignored): what an export writes.
    /// Empty (no columns) when nothing matches.
    pub fn search_all(&self, req: &Search) -> Result<DataFrame, SearchError> {
        let run = self.hits(req)?;
        let d = self.cache.dicts();
        run.page(&d, 0, run.total())
    }

    /// Every matching row in pages, in the order asked (`offset` and `limit` ignored): what
    /// an export streams, one page in memory at a time. The matches are found here (a bad
    /// request fails now, before anything is sent); each page is cut when asked for.
    pub fn pages(self: &Arc<Self>, req: &Search) -> Result<Pages, SearchError> {
        let run = self.hits(req)?;
        Ok(Pages {
            searcher: self.clone(),
            run,
            offset: 0,
        })
    }

    /// The parts a search reads and the rows of each that match.
    fn hits(&self, req: &Search) -> Result<Run, SearchError> {
        let (sort, desc) = req
            .sort
            .clone()
            .unwrap_or_else(|| (col::FIRST_TS.to_string(), false));
        if sort != "capture" && !SEARCH_COLUMNS.contains(&sort.as_str()) {
            return Err(SearchError::BadRequest(format!(
                "cannot sort by {sort:?}: sort by capture or one of {}",
                SEARCH_COLUMNS.join(", ")
            )));
        }
        let (from, to) = (
            req.from_ns.unwrap_or(i64::MIN),
            req.to_ns.unwrap_or(i64::MAX),
        );
        if from >= to {
            return Err(SearchError::BadRequest(
                "the time range is empty: `from` must be before `to`".into(),
            ));
        }
        let all = self.store.children("captures/")?;
        let captures: Vec<String> = if req.captures.is_empty() {
            all
        } else {
            for c in &req.captures {
                if !all.contains(c) {
                    return Err(SearchError::BadRequest(format!("no capture {c:?}")));
                }
            }
            req.captures.clone()
        };
        let parts = self.cache.parts(self.store.as_ref(), &captures, to)?;
        let filter = format!("{captures:?} {:?} {from} {to}", req.query);
        let same = |f: &Found| {
            f.filter == filter
                && f.parts.len() == parts.len()
                && f.parts.iter().zip(&parts).all(|(a, b)| Arc::ptr_eq(a, b))
        };
        let kept = {
            let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent.iter().find(|f| same(f)).cloned()
        };
        let found = match kept {
            Some(f) => f,
            None => {
                let q = {
                    let d = self.cache.dicts();
                    eval::Compiled::new(&req.query, &d)
                };
                let hits = parts
                    .par_iter()
                    .map(|p| q.rows(p, from, to))
                    .collect::<PolarsResult<Vec<_>>>()
                    .map_err(SearchError::results)?;
                let f = Arc::new(Found {
                    filter,
                    parts,
                    hits,
                    overview: OnceLock::new(),
                });
                let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
                recent.push_front(f.clone());
                recent.truncate(RECENT);
                f
            }
        };
        Ok(Run { found, sort, desc })
    }
}

/// The pages of a search's matches ([`Searcher::pages`]).
pub struct Pages {
    searcher: Arc<Searcher>,
    run: Run,
    offset: usize,
}

impl Pages {
    /// Rows matched in all.
    pub fn total(&self) -> usize {
        self.run.total()
    }

    /// The next `rows` rows, `None` after the last.
    pub fn next_page(&mut self, rows: usize) -> Option<Result<DataFrame, SearchError>> {
        if self.offset >= self.run.total() || rows == 0 {
            return None;
        }
        let d = self.searcher.cache.dicts();
        let page = self.run.page(&d, self.offset, rows);
        self.offset += rows;
        Some(page)
    }
}

/// A search's matching rows, before a page is cut.
struct Run {
    found: Arc<Found>,
    sort: String,
    desc: bool,
}

impl Run {
    fn total(&self) -> usize {
        self.found.hits.iter().map(Vec::len).sum()
    }

    /// Rows `[offset, offset + limit)` in the order asked, as a frame.
    fn page(&self, d: &part::Dicts, offset: usize, limit: usize) -> Result<DataFrame, SearchError> {
        let data = SearchError::results;
        let (parts, hits) = (&self.found.parts, &self.found.hits);
        let picks = if self.sort == col::FIRST_TS {
            select::by_time(parts, hits, self.desc, offset, limit)
        } else {
            select::by_column(parts, hits, d, &self.sort, self.desc, offset, limit).map_err(data)?
        };
        select::frame(parts, &picks).map_err(data)
    }
}

/// One flow's full result row (tuple, offsets, every feature, every class probability):
/// row `row` of `captures/ID/results/NNNNN.parquet`, where a search row's `shard` and `row`
/// point. A shard or row that is not there is a [`SearchError::NotFound`].
pub fn flow_row(
    store: &dyn Store,
    capture: &str,
    shard: u32,
    row: u32,
) -> Result<DataFrame, SearchError> {
    let key = weir_pipeline::result_key(capture, shard);
    let bytes = match store.get(&key) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(SearchError::NotFound(format!(
                "capture {capture:?} has no shard {shard} (no such capture, or not classified yet)"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let df = weir_records::parquet_to_frame(&bytes).map_err(|e| SearchError::Data {
        key: key.clone(),
        reason: e.to_string(),
    })?;
    if row as usize >= df.height() {
        return Err(SearchError::NotFound(format!(
            "shard {shard} of capture {capture:?} has {} flows: there is no row {row}",
            df.height()
        )));
    }
    Ok(df.slice(i64::from(row), 1))
}
