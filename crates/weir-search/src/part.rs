//! A search part held in memory: the frame as stored (what a page's rows are cut from) and,
//! beside it, the columns a query filters, sorts and counts on, decoded once into plain
//! vectors. Addresses and classes are interned in [`Dicts`] shared by every part, so a
//! network or class term is decided once per distinct value (a bitmap over the dictionary)
//! rather than once per row, and the top values of a result are array counts.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock};
use weir_wire::columns as col;

use polars::prelude::*;
use weir_records::columns::{f64s, i64s, strings};

/// The id of a missing or unreadable address.
pub(crate) const NONE: u32 = u32::MAX;

/// Distinct values, each with a small id.
pub(crate) struct Dict<T> {
    ids: HashMap<T, u32>,
    pub values: Vec<T>,
}

impl<T> Default for Dict<T> {
    fn default() -> Self {
        Dict {
            ids: HashMap::new(),
            values: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone> Dict<T> {
    fn id(&mut self, v: &T) -> u32 {
        if let Some(id) = self.ids.get(v) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(v.clone(), id);
        self.values.push(v.clone());
        id
    }

    /// For every value: whether `f` holds.
    pub fn mask(&self, f: impl Fn(&T) -> bool) -> Vec<bool> {
        self.values.iter().map(f).collect()
    }
}

/// The dictionaries every part's ids point into. They only grow (an address once seen keeps
/// its id while the process lives): small next to the parts (one entry per distinct value).
#[derive(Default)]
pub(crate) struct Dicts {
    pub ips: Dict<IpAddr>,
    pub classes: Dict<String>,
}

/// One part of the search layout, ready to search.
pub(crate) struct Part {
    /// The capture it belongs to.
    pub capture: String,
    /// Its rows as stored, sorted by first packet.
    pub df: DataFrame,
    pub first: Vec<i64>,
    pub last: Vec<i64>,
    /// Address ids ([`Dicts::ips`]; [`NONE`] when unreadable).
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    /// Ports and protocol (NaN when missing).
    pub sport: Vec<f32>,
    pub dport: Vec<f32>,
    pub proto: Vec<f32>,
    /// Class ids ([`Dicts::classes`]).
    pub class: Vec<u32>,
    pub probability: Vec<f64>,
    pub anomaly: Vec<f64>,
    pub percentile: Vec<f64>,
    pub alert: Vec<bool>,
}

/// A column as f64, or NaN for every row when the frame lacks it.
fn f64s_or_nan(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    if df.schema().contains(name) {
        f64s(df, name)
    } else {
        Ok(vec![f64::NAN; df.height()])
    }
}

fn texts(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    if df.schema().contains(name) {
        strings(df, name)
    } else {
        Ok(vec![String::new(); df.height()])
    }
}

/// `df` sorted by first packet (stable), and the row of `df` each sorted row was (`None`
/// when it was sorted already).
pub(crate) fn by_time(df: DataFrame) -> PolarsResult<(DataFrame, Option<Vec<IdxSize>>)> {
    let first = i64s(&df, col::FIRST_TS)?;
    if first.is_sorted() {
        return Ok((df, None));
    }
    let mut idx: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
    idx.sort_by_key(|&i| first[i as usize]);
    let df = df.take(&IdxCa::from_vec("order".into(), idx.clone()))?;
    Ok((df, Some(idx)))
}

impl Part {
    /// A part of `capture` from its frame. A column the frame lacks reads as missing in
    /// every row (the store's parts are checked for every column before they get here).
    pub fn new(capture: &str, df: DataFrame, dicts: &RwLock<Dicts>) -> PolarsResult<Part> {
        // Parts are written sorted by first packet; one that is not is sorted here, since
        // paging by time relies on it.
        let (df, _) = by_time(df)?;
        let first = i64s(&df, col::FIRST_TS)?;
        let n = df.height();
        let last = if df.schema().contains(col::LAST_TS) {
            i64s(&df, col::LAST_TS)?
        } else {
            first.clone()
        };
        let parse = |name| -> PolarsResult<Vec<Option<IpAddr>>> {
            Ok(texts(&df, name)?.iter().map(|s| s.parse().ok()).collect())
        };
        let (src_ips, dst_ips, names) = (
            parse(col::SRC_IP)?,
            parse(col::DST_IP)?,
            texts(&df, col::CLASS)?,
        );
        let (src, dst, class) = {
            let mut d = dicts.write().unwrap_or_else(PoisonError::into_inner);
            let mut ids = |v: &[Option<IpAddr>]| -> Vec<u32> {
                v.iter()
                    .map(|a| a.as_ref().map_or(NONE, |a| d.ips.id(a)))
                    .collect()
            };
            let (src, dst) = (ids(&src_ips), ids(&dst_ips));
            let class = names.iter().map(|c| d.classes.id(c)).collect();
            (src, dst, class)
        };
        let f32s = |name| -> PolarsResult<Vec<f32>> {
            Ok(f64s_or_nan(&df, name)?
                .into_iter()
                .map(|x| x as f32)
                .collect())
        };
        let alert = if df.schema().contains(col::ALERT) {
            let a = df.column(col::ALERT)?.cast(&DataType::Boolean)?;
            a.bool()?.iter().map(|v| v.unwrap_or(false)).collect()
        } else {
            vec![false; n]
        };
        Ok(Part {
            capture: capture.to_string(),
            src,
            dst,
            sport: f32s(col::SRC_PORT)?,
            dport: f32s(col::DST_PORT)?,
            proto: f32s(col::PROTO)?,
            class,
            probability: f64s_or_nan(&df, col::CLASS_PROBABILITY)?,
            anomaly: f64s_or_nan(&df, col::ANOMALY)?,
            percentile: f64s_or_nan(&df, col::ANOMALY_PERCENTILE)?,
            alert,
            first,
            last,
            df,
        })
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.first.len()
    }

    /// About how much memory it holds.
    pub fn bytes(&self) -> usize {
        self.df.estimated_size() + self.len() * (8 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 1)
    }
}
