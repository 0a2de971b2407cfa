//! # weir-search
//!
//! Search over weir's results, the one implementation the web app's pages and its JSON API
//! call: the query language ([`Query`], with errors that point at the mistake), filters over
//! the search layout the classifiers write (`captures/ID/flows/{day,month,year}=P/part-N.parquet`,
//! see `weir_pipeline::write_search`), a time range that skips whole partitions by name, sort
//! by any column, and paging.
//!
//! It reads any [`Store`]: a data directory of `weir analyze` or the bucket of the functions.

mod eval;
mod overview;
mod query;

use polars::prelude::*;
use weir_pipeline::{partition_range, PipelineError, Store, SEARCH_COLUMNS};

pub use eval::matches;
pub use overview::{overview, Bin, Overview, BINS, TOP, TOP_FIELDS};
pub use query::{Expr, Field, Op, ParseError, Query, Term, Value};

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

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is wrong (says what to change): a 400, never a 500.
    #[error("{0}")]
    BadRequest(String),
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

/// Run a search: every part of the chosen captures whose partition overlaps the time range,
/// filtered by time and query, sorted, one page cut out.
pub fn search(store: &dyn Store, req: &Search) -> Result<Page, SearchError> {
    if req.limit == 0 || req.limit > MAX_LIMIT {
        return Err(SearchError::BadRequest(format!(
            "limit {} is not between 1 and {MAX_LIMIT}",
            req.limit
        )));
    }
    let rows = search_all(store, req)?;
    let total = rows.height();
    let overview = overview(&rows).map_err(|e| SearchError::Data {
        key: "results".into(),
        reason: e.to_string(),
    })?;
    let start = req.offset.min(total);
    let len = req.limit.min(total - start);
    Ok(Page {
        total,
        offset: req.offset,
        rows: rows.slice(start as i64, len),
        overview,
    })
}

/// Every matching row, sorted (`offset` and `limit` ignored): what an export writes. Empty
/// (no columns) when nothing matches.
pub fn search_all(store: &dyn Store, req: &Search) -> Result<DataFrame, SearchError> {
    let (sort_col, descending) = req
        .sort
        .clone()
        .unwrap_or_else(|| ("first_ts".to_string(), false));
    if sort_col != "capture" && !SEARCH_COLUMNS.contains(&sort_col.as_str()) {
        return Err(SearchError::BadRequest(format!(
            "cannot sort by {sort_col:?}: sort by capture or one of {}",
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
    let all = store.children("captures/")?;
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
    let mut found: Vec<DataFrame> = Vec::new();
    for id in &captures {
        let prefix = format!("captures/{id}/flows/");
        for key in store.list(&prefix)? {
            let Some(partition) = key[prefix.len()..].split('/').next() else {
                continue;
            };
            // A partition wholly outside the range is not read at all. (A flow may last past
            // its partition's end: the range's start is checked per row below.)
            if let Some((start, _)) = partition_range(partition) {
                if start >= to {
                    continue;
                }
            }
            let data = |e: PolarsError| SearchError::Data {
                key: key.clone(),
                reason: e.to_string(),
            };
            let df = weir_records::parquet_to_frame(&store.get(&key)?).map_err(data)?;
            let keep = eval::mask(&df, &req.query, from, to).map_err(data)?;
            let mut hit = df.filter(&keep).map_err(data)?;
            if hit.height() == 0 {
                continue;
            }
            let capture = Column::new("capture".into(), vec![id.as_str(); hit.height()]);
            hit.insert_column(0, capture).map_err(data)?;
            found.push(hit);
        }
    }
    let mut parts = found.into_iter();
    let Some(mut rows) = parts.next() else {
        return Ok(DataFrame::empty());
    };
    let data = |e: PolarsError| SearchError::Data {
        key: "results".into(),
        reason: e.to_string(),
    };
    for f in parts {
        rows.vstack_mut(&f).map_err(data)?;
    }
    let order = eval::order(&rows, &sort_col, descending).map_err(data)?;
    let idx = IdxCa::from_vec("idx".into(), order);
    rows.take(&idx).map_err(data)
}

/// One flow's full result row (tuple, offsets, every feature, every class probability):
/// row `row` of `captures/ID/results/NNNNN.parquet`, where a search row's `shard` and `row`
/// point. A shard or row that is not there is a [`SearchError::BadRequest`].
pub fn flow_row(
    store: &dyn Store,
    capture: &str,
    shard: u32,
    row: u32,
) -> Result<DataFrame, SearchError> {
    let key = weir_pipeline::result_key(capture, shard);
    let bytes = match store.get(&key) {
        Ok(b) => b,
        Err(e) if e.fault() == Some(weir_pipeline::StoreFault::NotFound) => {
            return Err(SearchError::BadRequest(format!(
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
        return Err(SearchError::BadRequest(format!(
            "shard {shard} of capture {capture:?} has {} flows: there is no row {row}",
            df.height()
        )));
    }
    Ok(df.slice(i64::from(row), 1))
}
