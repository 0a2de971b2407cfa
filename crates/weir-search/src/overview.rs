//! What a result set looks like at a glance, over every matching row (not only the page): a
//! time histogram of first packets (what the search page brushes to set a time range) and
//! the most frequent values of the fields an analyst pivots on.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use weir_wire::columns as col;

use polars::prelude::*;
use rayon::prelude::*;

use crate::part::{Dicts, Part, NONE};

/// Bars of the time histogram at most.
pub const BINS: usize = 60;
/// Values per field in [`Overview::top`].
pub const TOP: usize = 8;

/// One bar: flows whose first packet is in `[start_ns, end_ns)`, and how many alerted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bin {
    /// Start (ns since the epoch, UTC).
    pub start_ns: i64,
    /// End, exclusive.
    pub end_ns: i64,
    /// Flows.
    pub flows: u64,
    /// Of which alerts.
    pub alerts: u64,
}

/// The histogram and the top values of a result set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overview {
    /// Equal-width bars from the first first packet to the last (empty when no rows).
    pub histogram: Vec<Bin>,
    /// For `src_ip`, `dst_ip`, `dst_port`, `class`: the most frequent values (most first, ties
    /// by value) with their counts.
    pub top: Vec<(String, Vec<(String, u64)>)>,
}

/// The fields of [`Overview::top`], as (column, query field).
pub const TOP_FIELDS: &[(&str, &str)] = &[
    (col::SRC_IP, "src"),
    (col::DST_IP, "dst"),
    (col::DST_PORT, "dport"),
    ("class", "class"),
];

/// The overview of `rows` (a search's rows: empty, or with the search layout's columns).
pub fn overview(rows: &DataFrame) -> PolarsResult<Overview> {
    if rows.height() == 0 {
        return Ok(Overview::default());
    }
    let dicts = RwLock::new(Dicts::default());
    let part = Arc::new(Part::new("", rows.clone(), &dicts)?);
    let hits = vec![(0..part.len() as u32).collect()];
    let d = dicts.read().unwrap_or_else(PoisonError::into_inner);
    Ok(overview_of(&[part], &hits, &d))
}

/// Counts over some parts' hits.
struct Acc {
    bins: Vec<[u64; 2]>,
    src: Vec<u32>,
    dst: Vec<u32>,
    /// Destination ports 0..=65535 (a missing one counts as 0); others in `dport_other`.
    dport: Vec<u32>,
    dport_other: HashMap<u64, u64>,
    class: Vec<u32>,
}

impl Acc {
    fn new(bins: usize, d: &Dicts) -> Acc {
        Acc {
            bins: vec![[0; 2]; bins],
            src: vec![0; d.ips.values.len()],
            dst: vec![0; d.ips.values.len()],
            dport: vec![0; 1 << 16],
            dport_other: HashMap::new(),
            class: vec![0; d.classes.values.len()],
        }
    }

    fn merge(mut self, o: Acc) -> Acc {
        let add = |a: &mut Vec<u32>, b: Vec<u32>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        for (a, b) in self.bins.iter_mut().zip(o.bins) {
            a[0] += b[0];
            a[1] += b[1];
        }
        add(&mut self.src, o.src);
        add(&mut self.dst, o.dst);
        add(&mut self.dport, o.dport);
        add(&mut self.class, o.class);
        for (k, v) in o.dport_other {
            *self.dport_other.entry(k).or_default() += v;
        }
        self
    }
}

/// The `TOP` most frequent of `(value, count)` (most first, ties by the value's text).
fn top<K>(
    counts: impl Iterator<Item = (K, u64)>,
    name: impl Fn(&K) -> String,
) -> Vec<(String, u64)> {
    let mut c: Vec<(K, u64)> = counts.filter(|(_, n)| *n > 0).collect();
    if c.len() > TOP {
        c.select_nth_unstable_by(TOP - 1, |a, b| b.1.cmp(&a.1));
        let least = c[TOP - 1].1;
        // Every value tied with the last one kept, so the tie goes by text.
        c.retain(|(_, n)| *n >= least);
    }
    let mut out: Vec<(String, u64)> = c.iter().map(|(k, n)| (name(k), *n)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(TOP);
    out
}

/// The overview of the hits (rows ascending) of each part.
pub(crate) fn overview_of(parts: &[Arc<Part>], hits: &[Vec<u32>], d: &Dicts) -> Overview {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (p, h) in parts.iter().zip(hits) {
        if let (Some(a), Some(b)) = (h.first(), h.last()) {
            lo = lo.min(p.first[*a as usize]);
            hi = hi.max(p.first[*b as usize]);
        }
    }
    if lo > hi {
        return Overview::default();
    }
    // Width: a whole number of ns covering [lo, hi] in at most BINS bars (at least 1 ns).
    let span = (hi - lo) as u128 + 1;
    let width = span.div_ceil(BINS as u128).max(1) as i64;
    let n = (((hi - lo) / width) + 1) as usize;
    let acc = parts
        .par_iter()
        .zip(hits)
        .with_min_len(
            parts
                .len()
                .div_ceil(2 * rayon::current_num_threads())
                .max(1),
        )
        .fold(
            || Acc::new(n, d),
            |mut a, (p, h)| {
                // Hits are ascending by first packet: each bar's hits are one run, found by
                // binary search, so no row needs a division.
                let mut i = 0;
                while i < h.len() {
                    let bar = ((p.first[h[i] as usize] - lo) / width) as usize;
                    let end = lo.saturating_add((bar as i64 + 1).saturating_mul(width));
                    let j = i + h[i..].partition_point(|&r| p.first[r as usize] < end);
                    a.bins[bar][0] += (j - i) as u64;
                    a.bins[bar][1] +=
                        h[i..j].iter().filter(|&&r| p.alert[r as usize]).count() as u64;
                    i = j;
                }
                for &r in h {
                    let r = r as usize;
                    for (ids, counts) in [(&p.src, &mut a.src), (&p.dst, &mut a.dst)] {
                        if ids[r] != NONE {
                            counts[ids[r] as usize] += 1;
                        }
                    }
                    let port = p.dport[r];
                    if port.is_nan() {
                        a.dport[0] += 1;
                    } else if (0.0..65536.0).contains(&port) {
                        a.dport[port as usize] += 1;
                    } else {
                        *a.dport_other.entry(port as u64).or_default() += 1;
                    }
                    a.class[p.class[r] as usize] += 1;
                }
                a
            },
        )
        .reduce(|| Acc::new(n, d), Acc::merge);
    let histogram = acc
        .bins
        .iter()
        .enumerate()
        .map(|(i, b)| Bin {
            start_ns: lo + i as i64 * width,
            end_ns: lo + (i as i64 + 1) * width,
            flows: b[0],
            alerts: b[1],
        })
        .collect();
    let ips = |c: &[u32]| {
        top(c.iter().enumerate().map(|(i, n)| (i, u64::from(*n))), |i| {
            d.ips.values[*i].to_string()
        })
    };
    let ports = acc
        .dport
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u64, u64::from(*n)))
        .chain(acc.dport_other.iter().map(|(k, v)| (*k, *v)));
    let top = vec![
        (col::SRC_IP.to_string(), ips(&acc.src)),
        (col::DST_IP.to_string(), ips(&acc.dst)),
        (col::DST_PORT.to_string(), top(ports, u64::to_string)),
        (
            "class".to_string(),
            top(
                acc.class
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (i, u64::from(*n))),
                |i| d.classes.values[*i].clone(),
            ),
        ),
    ];
    Overview { histogram, top }
}

/// How a result's anomaly scores and models spread (a capture dashboard's view of it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Flows per 5-point band of anomaly percentile (`[0, 5)`, ..., `[95, 100]`): 20 bands.
    pub percentiles: Vec<u64>,
    /// The model versions that decided them, sorted.
    pub models: Vec<String>,
}

/// The profile of the hits (rows ascending) of each part.
pub(crate) fn profile_of(parts: &[Arc<Part>], hits: &[Vec<u32>]) -> PolarsResult<Profile> {
    let mut percentiles = vec![0u64; 20];
    let mut models = std::collections::BTreeSet::new();
    for (p, h) in parts.iter().zip(hits) {
        if h.is_empty() {
            continue;
        }
        for &r in h {
            let x = p.percentile[r as usize];
            if x.is_finite() {
                percentiles[((x / 5.0).max(0.0) as usize).min(19)] += 1;
            }
        }
        let col = p.df.column(col::MODEL_VERSION)?;
        let col = if h.len() == p.len() {
            col.unique()?
        } else {
            let idx = h.iter().map(|&r| r as IdxSize).collect();
            col.take(&IdxCa::from_vec("rows".into(), idx))?.unique()?
        };
        let col = col.cast(&DataType::String)?;
        models.extend(col.str()?.iter().flatten().map(str::to_string));
    }
    Ok(Profile {
        percentiles,
        models: models.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five flows by hand: the bars and counts worked out by hand.
    #[test]
    fn bars_and_top_values_count_every_row() {
        let df = df!(
            col::FIRST_TS => [0i64, 5, 59, 60, 119],
            "alert" => [false, true, false, true, true],
            col::SRC_IP => ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1", "10.0.0.2"],
            col::DST_IP => ["10.0.0.9"; 5],
            col::DST_PORT => [80u32, 80, 443, 80, 22],
            "class" => ["Normal", "DDoS", "Normal", "DDoS", "DDoS"],
        )
        .unwrap();
        let o = overview(&df).unwrap();
        // span 120 ns over 60 bars: 2 ns each, 60 bars.
        assert_eq!(o.histogram.len(), 60);
        assert_eq!(o.histogram[0].flows, 1);
        assert_eq!(
            o.histogram[2],
            Bin {
                start_ns: 4,
                end_ns: 6,
                flows: 1,
                alerts: 1
            }
        );
        assert_eq!(o.histogram[59].flows, 1);
        assert_eq!(o.histogram.iter().map(|b| b.flows).sum::<u64>(), 5);
        assert_eq!(o.histogram.iter().map(|b| b.alerts).sum::<u64>(), 3);
        let top: HashMap<_, _> = o.top.into_iter().collect();
        assert_eq!(
            top[col::SRC_IP],
            vec![("10.0.0.1".into(), 3), ("10.0.0.2".into(), 2)]
        );
        assert_eq!(top[col::DST_PORT][0], ("80".into(), 3));
        assert_eq!(top["class"], vec![("DDoS".into(), 3), ("Normal".into(), 2)]);
        assert_eq!(overview(&DataFrame::empty()).unwrap(), Overview::default());
    }
}
