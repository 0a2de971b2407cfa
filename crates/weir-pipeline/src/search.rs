//! The search layout: every classified flow once more, narrow (what a search filters on and
//! lists; no features, no per-class probabilities), partitioned by capture and day of first
//! packet, sorted by time within a part, with min/max statistics per column chunk:
//!
//! ```text
//! captures/ID/flows/day=YYYY-MM-DD/part-NNNNN.parquet   (NNNNN: the shard)
//! ```
//!
//! The classifier writes the parts of its shard before the shard's result, so a capture
//! counted done has its whole search layout; `shard` and `row` point back at the full row
//! in `captures/ID/results/NNNNN.parquet` (features, probabilities) for a detail view.
//! Written per shard, the work is spread over the classifier workers rather than left to the
//! one aggregator invocation, and a redelivered shard rewrites the same parts.

use polars::prelude::*;

use crate::{PipelineError, Store};

/// Columns of the search layout, from the result rows; `shard` and `row` follow them.
pub const SEARCH_COLUMNS: &[&str] = &[
    "first_ts",
    "last_ts",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "community_id",
    "vlan",
    "tunnel",
    "packets_fwd",
    "packets_bwd",
    "bytes_fwd",
    "bytes_bwd",
    "end_reason",
    "class",
    "class_probability",
    "alert",
    "anomaly",
    "model_version",
];

/// Key of the search-layout part of shard `n` for one day (`YYYY-MM-DD`).
pub fn search_key(id: &str, day: &str, n: u32) -> String {
    format!("captures/{id}/flows/day={day}/part-{n:05}.parquet")
}

const DAY_NS: i64 = 86_400_000_000_000;

/// `YYYY-MM-DD` (UTC) of a timestamp in ns since the epoch.
pub fn day_of(ts_ns: i64) -> String {
    let days = ts_ns.div_euclid(DAY_NS);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", if m <= 2 { y + 1 } else { y })
}

/// A column as i64 values (nulls as 0): timestamps for the search layout and the summary.
pub(crate) fn i64s(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(df
        .column(name)?
        .cast(&DataType::Int64)?
        .i64()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(0)))
        .collect())
}

/// The parts of one shard's result rows: `(day, rows of that day sorted by first packet)`,
/// days ascending.
pub fn search_parts(result: &DataFrame, shard: u32) -> PolarsResult<Vec<(String, DataFrame)>> {
    let n = result.height();
    let ts = i64s(result, "first_ts")?;
    let mut order: Vec<IdxSize> = (0..n as IdxSize).collect();
    order.sort_by_key(|&i| (ts[i as usize], i));
    let mut narrow = result.select(SEARCH_COLUMNS.iter().copied())?;
    narrow.hstack_mut(&[
        Column::new("shard".into(), vec![shard; n]),
        Column::new("row".into(), (0..n as u32).collect::<Vec<u32>>()),
    ])?;
    let day = |k: usize| ts[order[k] as usize].div_euclid(DAY_NS);
    let sorted = narrow.take(&IdxCa::from_vec("order".into(), order.clone()))?;
    let mut parts = Vec::new();
    let mut start = 0;
    for k in 1..=n {
        if k == n || day(k) != day(start) {
            parts.push((
                day_of(ts[order[start] as usize]),
                sorted.slice(start as i64, k - start),
            ));
            start = k;
        }
    }
    Ok(parts)
}

/// Write the search-layout parts of shard `shard` of capture `id` from its result rows.
pub fn write_search(
    store: &dyn Store,
    id: &str,
    shard: u32,
    result: &DataFrame,
) -> Result<usize, PipelineError> {
    let parts = search_parts(result, shard)
        .map_err(|e| PipelineError::Data(search_key(id, "*", shard), e.to_string()))?;
    let count = parts.len();
    let mut objects = Vec::with_capacity(count);
    for (day, mut part) in parts {
        let key = search_key(id, &day, shard);
        let bytes = weir_records::frame_to_parquet(&mut part)
            .map_err(|e| PipelineError::Data(key.clone(), e.to_string()))?;
        objects.push((key, bytes));
    }
    store.put_many(objects)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_709_251_199_000_000_000), "2024-02-29");
        assert_eq!(day_of(1_709_251_200_000_000_000), "2024-03-01");
        assert_eq!(day_of(-1), "1969-12-31");
    }

    #[test]
    fn parts_split_by_day_sort_by_time_and_point_back() {
        let day = DAY_NS;
        let ts = vec![day + 5, 3, 2 * day, day + 1, 7];
        let n = ts.len();
        let mut cols: Vec<Column> = SEARCH_COLUMNS
            .iter()
            .filter(|c| **c != "first_ts")
            .map(|c| Column::new((*c).into(), vec![0u32; n]))
            .collect();
        cols.insert(0, Column::new("first_ts".into(), ts.clone()));
        cols.push(Column::new("p_Normal".into(), vec![1f32; n]));
        let df = DataFrame::new(n, cols).unwrap();
        let parts = search_parts(&df, 7).unwrap();
        let days: Vec<&str> = parts.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(days, ["1970-01-01", "1970-01-02", "1970-01-03"]);
        let col = |df: &DataFrame, c: &str| -> Vec<i64> {
            df.column(c)
                .unwrap()
                .cast(&DataType::Int64)
                .unwrap()
                .i64()
                .unwrap()
                .downcast_iter()
                .flat_map(|a| a.iter().map(|v| *v.unwrap()))
                .collect()
        };
        assert_eq!(col(&parts[0].1, "first_ts"), [3, 7]);
        assert_eq!(col(&parts[0].1, "row"), [1, 4]);
        assert_eq!(col(&parts[1].1, "first_ts"), [day + 1, day + 5]);
        assert_eq!(col(&parts[1].1, "row"), [3, 0]);
        assert_eq!(col(&parts[2].1, "shard"), [7]);
        // Narrow: no probabilities, the search columns then shard and row.
        assert_eq!(parts[0].1.width(), SEARCH_COLUMNS.len() + 2);
        assert!(parts[0].1.column("p_Normal").is_err());
        assert_eq!(parts.iter().map(|(_, p)| p.height()).sum::<usize>(), n);
    }
}
