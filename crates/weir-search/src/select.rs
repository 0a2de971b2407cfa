//! One page of a sorted result without sorting the result: the matching rows of every part
//! are ascending by first packet already (parts are sorted by time), so a page in time order
//! is found by counting (binary searches over the parts for the key at the page's first
//! rank, then a merge of the parts from there), however deep the page. Any other column is a
//! selection of the first `offset + limit` keys (linear in the rows, then a sort of those).
//!
//! The order is always a total one: the key (missing values last either way), then the
//! part, then the row, so ties keep the order in which captures, parts and rows come.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::IpAddr;
use std::sync::Arc;
use weir_wire::columns as col;

use polars::prelude::*;
use rayon::prelude::*;

use crate::part::{Dicts, Part, NONE};

/// A row of the result: (part, row in the part's frame).
pub(crate) type Pick = (u32, u32);

/// Midpoint of `[a, b]`, rounded down or up, without overflow.
fn mid(a: i64, b: i64, up: bool) -> i64 {
    ((i128::from(a) + i128::from(b) + i128::from(up)).div_euclid(2)) as i64
}

/// The rows at ranks `[offset, offset + limit)` in order of first packet.
pub(crate) fn by_time(
    parts: &[Arc<Part>],
    hits: &[Vec<u32>],
    desc: bool,
    offset: usize,
    limit: usize,
) -> Vec<Pick> {
    let total: usize = hits.iter().map(Vec::len).sum();
    if offset >= total || limit == 0 {
        return Vec::new();
    }
    let key = |p: usize, i: usize| parts[p].first[hits[p][i] as usize];
    // Each part's smallest and largest key: most parts lie wholly on one side of a key and
    // need no search.
    let span: Vec<(i64, i64)> = (0..parts.len())
        .map(|p| match hits[p].len() {
            0 => (i64::MAX, i64::MIN),
            n => (key(p, 0), key(p, n - 1)),
        })
        .collect();
    // Hits of part p with a key below / at most t.
    let lt = |p: usize, t: i64| match span[p] {
        (a, _) if t <= a => 0,
        (_, b) if t > b => hits[p].len(),
        _ => hits[p].partition_point(|&r| parts[p].first[r as usize] < t),
    };
    let le = |p: usize, t: i64| match span[p] {
        (a, _) if t < a => 0,
        (_, b) if t >= b => hits[p].len(),
        _ => hits[p].partition_point(|&r| parts[p].first[r as usize] <= t),
    };
    let count = |f: &dyn Fn(usize) -> usize| (0..parts.len()).map(f).sum::<usize>();
    let (mut a, mut b) = span
        .iter()
        .fold((i64::MAX, i64::MIN), |(a, b), s| (a.min(s.0), b.max(s.1)));
    // t: the key of the row at rank `offset`; `skip`: rows with that key before it.
    let (t, mut skip) = if desc {
        while a < b {
            let m = mid(a, b, true);
            if count(&|p| hits[p].len() - lt(p, m)) > offset {
                a = m;
            } else {
                b = m - 1;
            }
        }
        (a, offset - count(&|p| hits[p].len() - le(p, a)))
    } else {
        while a < b {
            let m = mid(a, b, false);
            if count(&|p| le(p, m)) > offset {
                b = m;
            } else {
                a = m + 1;
            }
        }
        (a, offset - count(&|p| lt(p, a)))
    };
    let mut out = Vec::with_capacity(limit.min(total - offset));
    // The rows with key t, in part and row order.
    for (p, h) in hits.iter().enumerate() {
        for &r in &h[lt(p, t)..le(p, t)] {
            if skip > 0 {
                skip -= 1;
            } else if out.len() < limit {
                out.push((p as u32, r));
            }
        }
    }
    if desc {
        // Below t, largest first, ties in part and row order: each part's cursor walks its
        // runs of equal keys downwards and each run upwards. (key, part, index, run end).
        let run = |p: usize, end: usize| {
            let k = key(p, end - 1);
            (k, Reverse(p), Reverse(lt(p, k)), end)
        };
        let mut heap: BinaryHeap<_> = (0..parts.len())
            .filter(|&p| lt(p, t) > 0)
            .map(|p| run(p, lt(p, t)))
            .collect();
        while out.len() < limit {
            let Some((k, Reverse(p), Reverse(i), end)) = heap.pop() else {
                break;
            };
            out.push((p as u32, hits[p][i]));
            if i + 1 < end {
                heap.push((k, Reverse(p), Reverse(i + 1), end));
            } else {
                let start = lt(p, k);
                if start > 0 {
                    heap.push(run(p, start));
                }
            }
        }
    } else {
        let mut heap: BinaryHeap<_> = (0..parts.len())
            .filter(|&p| le(p, t) < hits[p].len())
            .map(|p| Reverse((key(p, le(p, t)), p, le(p, t))))
            .collect();
        while out.len() < limit {
            let Some(Reverse((_, p, i))) = heap.pop() else {
                break;
            };
            out.push((p as u32, hits[p][i]));
            if i + 1 < hits[p].len() {
                heap.push(Reverse((key(p, i + 1), p, i + 1)));
            }
        }
    }
    out
}

/// Order-preserving integer of an i64.
fn of_i64(x: i64) -> u64 {
    (x as u64) ^ (1 << 63)
}

/// Order-preserving integer of an f64 (as `total_cmp`); NaN is missing.
fn of_f64(x: f64) -> Option<u64> {
    if x.is_nan() {
        return None;
    }
    let b = x.to_bits();
    Some(if b >> 63 == 1 { !b } else { b | 1 << 63 })
}

/// A row's place in one number's order, packed in one integer so that plain integer order
/// is the order wanted: missing (bit 127), the key (64 bits, inverted when descending), the
/// part (31 bits), the row (32 bits).
fn packed(key: Option<u64>, desc: bool, part: usize, row: u32) -> u128 {
    let k = key.map_or(0, |k| if desc { !k } else { k });
    u128::from(key.is_none()) << 127
        | u128::from(k) << 63
        | (part as u128 & 0x7fff_ffff) << 32
        | u128::from(row)
}

/// The `k` smallest of the integers pushed.
struct First {
    k: usize,
    v: Vec<u128>,
    /// Everything above this is out (the largest kept, once `k` are kept).
    cut: u128,
}

impl First {
    fn new(k: usize) -> First {
        First {
            k,
            v: Vec::new(),
            cut: u128::MAX,
        }
    }

    fn push(&mut self, x: u128) {
        if x > self.cut {
            return;
        }
        self.v.push(x);
        if self.v.len() >= 2 * self.k.max(512) {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.v.len() > self.k {
            self.v.select_nth_unstable(self.k - 1);
            self.v.truncate(self.k);
            self.cut = self.v[self.k - 1];
        }
    }

    fn merge(mut self, o: First) -> First {
        for x in o.v {
            self.push(x);
        }
        self
    }

    fn sorted(mut self) -> Vec<u128> {
        self.trim();
        self.v.sort_unstable();
        self.v
    }
}

/// A key of a part's row as one 64-bit number, for the columns held decoded.
fn number<'a>(p: &'a Part, col: &str) -> Option<Box<dyn Fn(usize) -> Option<u64> + 'a>> {
    type Key<'a> = Box<dyn Fn(usize) -> Option<u64> + 'a>;
    fn f32s(v: &[f32]) -> Key<'_> {
        Box::new(move |r| of_f64(f64::from(v[r])))
    }
    fn f64s(v: &[f64]) -> Key<'_> {
        Box::new(move |r| of_f64(v[r]))
    }
    Some(match col {
        col::FIRST_TS => Box::new(|r| Some(of_i64(p.first[r]))),
        col::LAST_TS => Box::new(|r| Some(of_i64(p.last[r]))),
        col::SRC_PORT => f32s(&p.sport),
        col::DST_PORT => f32s(&p.dport),
        col::PROTO => f32s(&p.proto),
        col::CLASS_PROBABILITY => f64s(&p.probability),
        col::ANOMALY => f64s(&p.anomaly),
        col::ANOMALY_PERCENTILE => f64s(&p.percentile),
        col::ALERT => Box::new(|r| Some(u64::from(p.alert[r]))),
        _ => return None,
    })
}

fn of_ip(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A part's sort keys for its hits.
enum Keys {
    Num(Vec<Option<u128>>),
    Text(Vec<Option<String>>),
}

fn keys(p: &Part, col: &str, rows: &[u32], d: &Dicts) -> PolarsResult<Keys> {
    let ip = |v: &[u32]| {
        rows.iter()
            .map(|&r| {
                let id = v[r as usize];
                (id != NONE).then(|| of_ip(d.ips.values[id as usize]))
            })
            .collect()
    };
    Ok(match col {
        "capture" => Keys::Text(vec![Some(p.capture.clone()); rows.len()]),
        col::SRC_IP => Keys::Num(ip(&p.src)),
        col::DST_IP => Keys::Num(ip(&p.dst)),
        _ => {
            let c = p.df.column(col)?;
            let dt = c.dtype();
            let idx = IdxCa::from_vec("rows".into(), rows.iter().map(|&r| r as IdxSize).collect());
            let c = c.take(&idx)?;
            if dt.is_integer() || matches!(dt, DataType::Datetime(..) | DataType::Boolean) {
                let c = c.cast(&DataType::Int64)?;
                Keys::Num(
                    c.i64()?
                        .iter()
                        .map(|v| v.map(|v| of_i64(v).into()))
                        .collect(),
                )
            } else if dt.is_float() {
                let c = c.cast(&DataType::Float64)?;
                Keys::Num(
                    c.f64()?
                        .iter()
                        .map(|v| v.and_then(of_f64).map(u128::from))
                        .collect(),
                )
            } else {
                let c = c.cast(&DataType::String)?;
                Keys::Text(c.str()?.iter().map(|v| v.map(str::to_string)).collect())
            }
        }
    })
}

/// The first `k` of every part's candidates under `cmp`, in order.
fn first_k<T: Send>(
    per_part: Vec<Vec<T>>,
    k: usize,
    cmp: impl Fn(&T, &T) -> Ordering + Sync,
) -> Vec<T> {
    let cut = |mut v: Vec<T>| {
        if v.len() > k {
            v.select_nth_unstable_by(k - 1, &cmp);
            v.truncate(k);
        }
        v
    };
    let per: Vec<Vec<T>> = per_part.into_par_iter().map(cut).collect();
    let mut all = cut(per.into_iter().flatten().collect());
    all.sort_unstable_by(&cmp);
    all
}

/// The rows at ranks `[offset, offset + limit)` in order of any column.
pub(crate) fn by_column(
    parts: &[Arc<Part>],
    hits: &[Vec<u32>],
    d: &Dicts,
    col: &str,
    desc: bool,
    offset: usize,
    limit: usize,
) -> PolarsResult<Vec<Pick>> {
    let total: usize = hits.iter().map(Vec::len).sum();
    if offset >= total || limit == 0 {
        return Ok(Vec::new());
    }
    let k = offset.saturating_add(limit).min(total);
    if number(&parts[0], col).is_some() {
        // A number held decoded: one packed integer per row; each worker keeps the first k
        // it has seen, and once it has k, a row that sorts after all of them is one compare.
        let found = parts
            .par_iter()
            .zip(hits)
            .enumerate()
            .fold(
                || First::new(k),
                |mut f, (i, (p, h))| {
                    let key = number(p, col).expect("the same column in every part");
                    for &r in h {
                        f.push(packed(key(r as usize), desc, i, r));
                    }
                    f
                },
            )
            .reduce(|| First::new(k), First::merge);
        return Ok(found
            .sorted()
            .into_iter()
            .skip(offset)
            .map(|x| (((x >> 32) & 0x7fff_ffff) as u32, x as u32))
            .collect());
    }
    let keys: Vec<Keys> = parts
        .par_iter()
        .zip(hits)
        .map(|(p, h)| keys(p, col, h, d))
        .collect::<PolarsResult<_>>()?;
    let picks: Vec<Pick> = if keys.iter().all(|k| matches!(k, Keys::Num(_))) {
        // (missing, key as it orders, part, row): plain tuple order is the order wanted.
        let cands: Vec<Vec<(bool, u128, u32, u32)>> = keys
            .into_iter()
            .enumerate()
            .map(|(p, k)| {
                let Keys::Num(k) = k else { unreachable!() };
                k.into_iter()
                    .zip(&hits[p])
                    .map(|(k, &r)| {
                        let k = k.map(|k| if desc { !k } else { k });
                        (k.is_none(), k.unwrap_or(0), p as u32, r)
                    })
                    .collect()
            })
            .collect();
        first_k(cands, k, Ord::cmp)
            .into_iter()
            .map(|(_, _, p, r)| (p, r))
            .collect()
    } else {
        let text = |k: Keys| match k {
            Keys::Text(t) => t,
            Keys::Num(n) => n.into_iter().map(|v| v.map(|v| v.to_string())).collect(),
        };
        let cands: Vec<Vec<(Option<String>, u32, u32)>> = keys
            .into_iter()
            .enumerate()
            .map(|(p, k)| {
                text(k)
                    .into_iter()
                    .zip(&hits[p])
                    .map(|(k, &r)| (k, p as u32, r))
                    .collect()
            })
            .collect();
        let cmp = |a: &(Option<String>, u32, u32), b: &(Option<String>, u32, u32)| {
            let by_key = match (&a.0, &b.0) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) if desc => y.cmp(x),
                (Some(x), Some(y)) => x.cmp(y),
            };
            by_key.then((a.1, a.2).cmp(&(b.1, b.2)))
        };
        first_k(cands, k, cmp)
            .into_iter()
            .map(|(_, p, r)| (p, r))
            .collect()
    };
    Ok(picks.into_iter().skip(offset).collect())
}

/// The picked rows as one frame, in the order picked: `capture`, then the part's columns.
/// Empty (no columns) when nothing is picked.
pub(crate) fn frame(parts: &[Arc<Part>], picks: &[Pick]) -> PolarsResult<DataFrame> {
    let mut by_part: BTreeMap<u32, Vec<(usize, u32)>> = BTreeMap::new();
    for (i, &(p, r)) in picks.iter().enumerate() {
        by_part.entry(p).or_default().push((i, r));
    }
    let mut stacked: Option<DataFrame> = None;
    let mut at = vec![0 as IdxSize; picks.len()];
    let mut n = 0;
    for (p, rows) in by_part {
        let part = &parts[p as usize];
        let idx = rows.iter().map(|&(_, r)| r as IdxSize).collect();
        let mut f = part.df.take(&IdxCa::from_vec("rows".into(), idx))?;
        let capture = Column::new("capture".into(), vec![part.capture.as_str(); f.height()]);
        f.insert_column(0, capture)?;
        for (j, &(i, _)) in rows.iter().enumerate() {
            at[i] = (n + j) as IdxSize;
        }
        n += rows.len();
        match &mut stacked {
            None => stacked = Some(f),
            Some(s) => {
                s.vstack_mut(&f)?;
            }
        }
    }
    let Some(s) = stacked else {
        return Ok(DataFrame::empty());
    };
    s.take(&IdxCa::from_vec("order".into(), at))
}
