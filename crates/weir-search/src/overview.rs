//! What a result set looks like at a glance, over every matching row (not only the page): a
//! time histogram of first packets (what the search page brushes to set a time range) and
//! the most frequent values of the fields an analyst pivots on.

use std::collections::HashMap;

use polars::prelude::*;
use weir_records::columns::{i64s, strings, u64s};

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
    ("src_ip", "src"),
    ("dst_ip", "dst"),
    ("dst_port", "dport"),
    ("class", "class"),
];

/// The overview of `rows` (a search's rows: empty, or with the search layout's columns).
pub fn overview(rows: &DataFrame) -> PolarsResult<Overview> {
    if rows.height() == 0 {
        return Ok(Overview::default());
    }
    let ts = i64s(rows, "first_ts")?;
    let alert: Vec<bool> = rows
        .column("alert")?
        .bool()?
        .iter()
        .map(|b| b.unwrap_or(false))
        .collect();
    let (lo, hi) = (
        *ts.iter().min().unwrap_or(&0),
        *ts.iter().max().unwrap_or(&0),
    );
    // Width: a whole number of ns covering [lo, hi] in at most BINS bars (at least 1 ns).
    let span = (hi - lo) as u128 + 1;
    let width = span.div_ceil(BINS as u128).max(1) as i64;
    let n = (((hi - lo) / width) + 1) as usize;
    let mut histogram: Vec<Bin> = (0..n)
        .map(|i| Bin {
            start_ns: lo + i as i64 * width,
            end_ns: lo + (i as i64 + 1) * width,
            flows: 0,
            alerts: 0,
        })
        .collect();
    for (t, a) in ts.iter().zip(&alert) {
        let b = &mut histogram[((t - lo) / width) as usize];
        b.flows += 1;
        b.alerts += u64::from(*a);
    }
    let mut top = Vec::new();
    for (col, _) in TOP_FIELDS {
        let values = if rows.column(col)?.dtype().is_integer() {
            u64s(rows, col)?.iter().map(u64::to_string).collect()
        } else {
            strings(rows, col)?
        };
        let mut counts: HashMap<String, u64> = HashMap::new();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts.truncate(TOP);
        top.push((col.to_string(), counts));
    }
    Ok(Overview { histogram, top })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five flows by hand: the bars and counts worked out by hand.
    #[test]
    fn bars_and_top_values_count_every_row() {
        let df = df!(
            "first_ts" => [0i64, 5, 59, 60, 119],
            "alert" => [false, true, false, true, true],
            "src_ip" => ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1", "10.0.0.2"],
            "dst_ip" => ["10.0.0.9"; 5],
            "dst_port" => [80u32, 80, 443, 80, 22],
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
            top["src_ip"],
            vec![("10.0.0.1".into(), 3), ("10.0.0.2".into(), 2)]
        );
        assert_eq!(top["dst_port"][0], ("80".into(), 3));
        assert_eq!(top["class"], vec![("DDoS".into(), 3), ("Normal".into(), 2)]);
        assert_eq!(overview(&DataFrame::empty()).unwrap(), Overview::default());
    }
}
