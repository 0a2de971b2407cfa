//! The search layout: every classified flow once more, narrow (what a search filters on and
//! lists; no features, no per-class probabilities), partitioned by capture and calendar
//! period of first packet (UTC), sorted by time within a part, with min/max statistics per
//! column chunk:
//!
//! ```text
//! captures/ID/flows/day=YYYY-MM-DD/part-NNNNN.parquet   (NNNNN: the shard)
//! captures/ID/flows/month=YYYY-MM/part-NNNNN.parquet    sparse shards, see below
//! captures/ID/flows/year=YYYY/part-NNNNN.parquet
//! ```
//!
//! Partitions are days, the unit analysts search by. A shard whose traffic is spread thin
//! over many days (a capture merged from years of traffic writes ~45 flows a day) would
//! write one tiny file per day: hundreds of objects of mostly Parquet footer, each a PUT
//! now and a GET for every search later. So a shard whose day parts would average fewer
//! than [`MIN_PART_ROWS`] rows uses months instead, and years if months are still that
//! sparse (but only where the coarser period means fewer parts: a small capture within one
//! day keeps its day). The choice depends on the shard's rows alone, so a redelivered shard
//! rewrites the same keys; every partition name is a time range ([`partition_range`]), so a
//! reader selects the partitions that overlap the range it searches, whatever their period.
//!
//! The classifier writes the parts of its shard before the shard's result, so a capture
//! counted done has its whole search layout; `shard` and `row` point back at the full row
//! in `captures/ID/results/NNNNN.parquet` (features, probabilities) for a detail view.
//! Written per shard, the work is spread over the classifier workers rather than left to the
//! one aggregator invocation, and a redelivered shard rewrites the same parts.

use polars::prelude::*;
use weir_records::columns::i64s;
use weir_wire::columns as col;

use crate::{PipelineError, Store};

/// Columns of the search layout, from the result rows; `shard` and `row` follow them.
pub const SEARCH_COLUMNS: &[&str] = &[
    col::FIRST_TS,
    col::LAST_TS,
    col::PROTO,
    col::SRC_IP,
    col::SRC_PORT,
    col::DST_IP,
    col::DST_PORT,
    col::COMMUNITY_ID,
    col::VLAN,
    col::TUNNEL,
    col::PACKETS_FWD,
    col::PACKETS_BWD,
    col::BYTES_FWD,
    col::BYTES_BWD,
    col::END_REASON,
    col::CLASS,
    col::CLASS_PROBABILITY,
    col::ALERT,
    col::ANOMALY,
    col::ANOMALY_PERCENTILE,
    col::MODEL_VERSION,
];

/// A shard's parts average at least this many rows, or its partitions get coarser.
pub const MIN_PART_ROWS: usize = 1024;

/// The calendar period of a search partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `day=YYYY-MM-DD`
    Day,
    /// `month=YYYY-MM`
    Month,
    /// `year=YYYY`
    Year,
}

impl Period {
    /// Which period of this kind `ts_ns` falls in, as a number that orders like time.
    fn index(self, ts_ns: i64) -> i64 {
        let days = ts_ns.div_euclid(DAY_NS);
        match self {
            Period::Day => days,
            Period::Month => {
                let (y, m, _) = civil(days);
                y * 12 + m - 1
            }
            Period::Year => civil(days).0,
        }
    }

    /// The partition directory name of the period `ts_ns` falls in (`day=2024-03-01`).
    pub fn partition(self, ts_ns: i64) -> String {
        let (y, m, d) = civil(ts_ns.div_euclid(DAY_NS));
        match self {
            Period::Day => format!("day={y:04}-{m:02}-{d:02}"),
            Period::Month => format!("month={y:04}-{m:02}"),
            Period::Year => format!("year={y:04}"),
        }
    }
}

/// Where a capture's search-layout parts are (`captures/ID/flows/`).
pub fn search_prefix(id: &str) -> String {
    format!("captures/{id}/flows/")
}

/// Key of the search-layout part of shard `n` in one partition (`day=2024-03-01`).
pub fn search_key(id: &str, partition: &str, n: u32) -> String {
    format!("{}{partition}/part-{n:05}.parquet", search_prefix(id))
}

/// The time range `[start, end)` in ns since the epoch (UTC) that a partition name
/// (`day=YYYY-MM-DD`, `month=YYYY-MM`, `year=YYYY`) covers; `None` for any other name.
pub fn partition_range(name: &str) -> Option<(i64, i64)> {
    let (kind, value) = name.split_once('=')?;
    let nums: Vec<i64> = value
        .split('-')
        .map(|p| p.parse().ok().filter(|_| !p.starts_with('+')))
        .collect::<Option<_>>()?;
    let ns = |y, m, d| days_from_civil(y, m, d) * DAY_NS;
    let (start, end) = match (kind, nums.as_slice()) {
        ("day", &[y, m, d]) if (1..=12).contains(&m) && (1..=days_in(y, m)).contains(&d) => {
            let s = ns(y, m, d);
            (s, s + DAY_NS)
        }
        ("month", &[y, m]) if (1..=12).contains(&m) => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (ns(y, m, 1), ns(ny, nm, 1))
        }
        ("year", &[y]) => (ns(y, 1, 1), ns(y + 1, 1, 1)),
        _ => return None,
    };
    Some((start, end))
}

const DAY_NS: i64 = 86_400_000_000_000;

/// `YYYY-MM-DD` (UTC) of a timestamp in ns since the epoch.
pub fn day_of(ts_ns: i64) -> String {
    let (y, m, d) = civil(ts_ns.div_euclid(DAY_NS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// RFC 3339 (UTC, milliseconds) of a timestamp in ns since the epoch:
/// `2024-02-29T13:05:09.250Z`.
pub fn rfc3339(ts_ns: i64) -> String {
    let (y, m, d) = civil(ts_ns.div_euclid(DAY_NS));
    let ms = ts_ns.rem_euclid(DAY_NS) / 1_000_000;
    let (h, min, sec, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{sec:02}.{milli:03}Z")
}

/// ns since the epoch of an RFC 3339 time with a zone (`2024-02-29T13:05:09.25Z`,
/// `2024-02-29T14:05:09+01:00`): the inverse of [`rfc3339`] (and finer: up to ns). The error
/// says what was given and what is expected.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad =
        || format!("{s:?} is not a time: give RFC 3339 (2024-02-01T10:00:00Z) or ns since 1970");
    let (date, time) = s.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, m, dd] = d[..] else { return Err(bad()) };
    let (clock, offset_s) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (hh, mm) = z[1..].split_once(':').ok_or_else(bad)?;
        let h: i64 = hh.parse().map_err(|_| bad())?;
        let mi: i64 = mm.parse().map_err(|_| bad())?;
        (c, sign * (h * 3600 + mi * 60))
    } else {
        return Err(format!(
            "{s:?} has no time zone: end it with Z (UTC) or +HH:MM"
        ));
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let t: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [h, mi, sec] = t[..] else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || dd < 1 || dd > days_in(y, m) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut ns_frac = 0i64;
    for (i, c) in frac.chars().take(9).enumerate() {
        let digit = c.to_digit(10).ok_or_else(bad)? as i64;
        ns_frac += digit * 10i64.pow(8 - i as u32);
    }
    let days = days_from_civil(y, m, dd);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(ns_frac))
        .ok_or_else(bad)
}

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of [`civil`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in(y: i64, m: i64) -> i64 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

/// The period a shard's parts use: days, unless its day parts would average fewer than
/// [`MIN_PART_ROWS`] rows and a coarser period makes fewer parts. `sorted` ascending.
pub fn shard_period(sorted: &[i64]) -> Period {
    let parts = |p: Period| {
        let mut n = 0;
        let mut last = None;
        for &t in sorted {
            let i = Some(p.index(t));
            if i != last {
                n += 1;
                last = i;
            }
        }
        n
    };
    let mut period = Period::Day;
    let mut count = parts(period);
    for coarser in [Period::Month, Period::Year] {
        if count == 0 || sorted.len() / count >= MIN_PART_ROWS {
            break;
        }
        let c = parts(coarser);
        if c < count {
            (period, count) = (coarser, c);
        }
    }
    period
}

/// The parts of one shard's result rows: `(partition, rows in it sorted by first packet)`,
/// in time order; the partitions' period is [`shard_period`]'s.
pub fn search_parts(result: &DataFrame, shard: u32) -> PolarsResult<Vec<(String, DataFrame)>> {
    let n = result.height();
    let ts = i64s(result, col::FIRST_TS)?;
    let mut order: Vec<IdxSize> = (0..n as IdxSize).collect();
    order.sort_by_key(|&i| (ts[i as usize], i));
    let sorted_ts: Vec<i64> = order.iter().map(|&i| ts[i as usize]).collect();
    let period = shard_period(&sorted_ts);
    let mut narrow = result.select(SEARCH_COLUMNS.iter().copied())?;
    narrow.hstack_mut(&[
        Column::new(col::SHARD.into(), vec![shard; n]),
        Column::new(col::ROW.into(), (0..n as u32).collect::<Vec<u32>>()),
    ])?;
    let sorted = narrow.take(&IdxCa::from_vec("order".into(), order))?;
    let mut parts = Vec::new();
    let mut start = 0;
    for k in 1..=n {
        if k == n || period.index(sorted_ts[k]) != period.index(sorted_ts[start]) {
            parts.push((
                period.partition(sorted_ts[start]),
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
        .map_err(|e| PipelineError::corrupt(search_key(id, "*", shard), e))?;
    let count = parts.len();
    let mut objects = Vec::with_capacity(count);
    for (partition, mut part) in parts {
        let key = search_key(id, &partition, shard);
        let bytes = weir_records::frame_to_parquet(&mut part)
            .map_err(|e| PipelineError::corrupt(&key, e))?;
        objects.push((key, bytes));
    }
    store.put_many(objects)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2024: i64 = 1_709_251_200_000_000_000; // 2024-03-01T00:00:00Z

    /// A result frame with these first-packet times (every other search column zero).
    fn frame(ts: &[i64]) -> DataFrame {
        let n = ts.len();
        let mut cols: Vec<Column> = SEARCH_COLUMNS
            .iter()
            .filter(|c| **c != col::FIRST_TS)
            .map(|c| Column::new((*c).into(), vec![0u32; n]))
            .collect();
        cols.insert(0, Column::new(col::FIRST_TS.into(), ts.to_vec()));
        cols.push(Column::new("p_normal".into(), vec![1f32; n]));
        DataFrame::new(n, cols).unwrap()
    }

    fn col(df: &DataFrame, c: &str) -> Vec<i64> {
        i64s(df, c).unwrap()
    }

    fn names(parts: &[(String, DataFrame)]) -> Vec<&str> {
        parts.iter().map(|(d, _)| d.as_str()).collect()
    }

    #[test]
    fn rfc3339_parses_back_and_refuses_days_a_month_lacks() {
        for ns in [
            0i64,
            -86_400_000_000_000,
            951_782_400_123_000_000,
            1_709_210_096_500_000_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Ok(ns), "{}", rfc3339(ns));
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000_000_000)
        );
        assert!(parse_rfc3339("2023-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-04-31T00:00:00Z").is_err());
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(T2024 - 1), "2024-02-29");
        assert_eq!(day_of(T2024), "2024-03-01");
        assert_eq!(day_of(-1), "1969-12-31");
    }

    #[test]
    fn every_partition_name_is_the_range_its_rows_fall_in() {
        // One timestamp every 7 h 13 min from 1999 to 2001 (leap years, year and month ends).
        let step = (7 * 3600 + 13 * 60) * 1_000_000_000i64;
        let start = 915_148_800_000_000_000 - DAY_NS; // 1998-12-31
        for k in 0..2_500 {
            let ts = start + k * step;
            for p in [Period::Day, Period::Month, Period::Year] {
                let name = p.partition(ts);
                let (a, b) = partition_range(&name).unwrap();
                assert!(a <= ts && ts < b, "{name}: {a} <= {ts} < {b}");
                // Its neighbours are the next and previous periods.
                assert_eq!(p.partition(b), p.partition(b - 1 + 1));
                assert_ne!(p.partition(b), name);
                assert_ne!(p.partition(a - 1), name);
            }
        }
        assert_eq!(
            partition_range("day=2024-02-29"),
            Some((T2024 - DAY_NS, T2024))
        );
        assert_eq!(
            partition_range("month=2024-02"),
            Some((T2024 - 29 * DAY_NS, T2024))
        );
        assert_eq!(partition_range("year=1970"), Some((0, 365 * DAY_NS)));
        for bad in [
            "day=2023-02-29",
            "day=2024-3-32",
            "month=2024-13",
            "month=2024",
            "year=+2024",
            "week=2024-09",
            "day=",
            "part-00001.parquet",
        ] {
            assert_eq!(partition_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn dense_shards_are_split_by_day() {
        // 2 x MIN_PART_ROWS flows on 2024-02-29 and 2024-03-01.
        let ts: Vec<i64> = (0..2 * MIN_PART_ROWS as i64)
            .map(|i| T2024 - DAY_NS + i * (DAY_NS / MIN_PART_ROWS as i64))
            .rev()
            .collect();
        let parts = search_parts(&frame(&ts), 0).unwrap();
        assert_eq!(names(&parts), ["day=2024-02-29", "day=2024-03-01"]);
        assert!(parts.iter().all(|(_, p)| p.height() == MIN_PART_ROWS));
    }

    #[test]
    fn sparse_shards_use_the_coarsest_period_that_means_fewer_parts() {
        // A few flows spread over three days of one month: one month part.
        let parts = search_parts(
            &frame(&[T2024 + 5, T2024 + 2 * DAY_NS, T2024 + 9 * DAY_NS]),
            0,
        )
        .unwrap();
        assert_eq!(names(&parts), ["month=2024-03"]);
        // ... over months of one year: one year part.
        let parts = search_parts(
            &frame(&[T2024, T2024 + 40 * DAY_NS, T2024 + 90 * DAY_NS]),
            0,
        )
        .unwrap();
        assert_eq!(names(&parts), ["year=2024"]);
        // Two days across new year: a month or year each would not make fewer parts.
        let ny = 1_704_067_200_000_000_000; // 2024-01-01
        let parts = search_parts(&frame(&[ny - 5, ny + 5, ny + 6]), 0).unwrap();
        assert_eq!(names(&parts), ["day=2023-12-31", "day=2024-01-01"]);
        // A small capture within one day keeps its day.
        let parts = search_parts(&frame(&[T2024 + 9, T2024 + 3]), 0).unwrap();
        assert_eq!(names(&parts), ["day=2024-03-01"]);
    }

    #[test]
    fn parts_sort_by_time_and_point_back() {
        let ts = vec![DAY_NS + 5, 3, 2 * DAY_NS, DAY_NS + 1, 7];
        let n = ts.len();
        let parts = search_parts(&frame(&ts), 7).unwrap();
        assert_eq!(names(&parts), ["month=1970-01"]);
        let p = &parts[0].1;
        assert_eq!(
            col(p, col::FIRST_TS),
            [3, 7, DAY_NS + 1, DAY_NS + 5, 2 * DAY_NS]
        );
        assert_eq!(col(p, "row"), [1, 4, 3, 0, 2]);
        assert_eq!(col(p, "shard"), [7; 5]);
        // Narrow: no probabilities, the search columns then shard and row.
        assert_eq!(p.width(), SEARCH_COLUMNS.len() + 2);
        assert!(p.column("p_normal").is_err());
        assert_eq!(p.height(), n);
    }
}
