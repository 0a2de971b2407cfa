//! The aggregator: once every shard has its result, build the capture's summary with polars
//! (counts per class, top talkers and ports, a timeline, anomaly statistics, top alerts).
//! The search layout is already there: the classifier wrote it per shard (see `search`).
//! It reads one result at a time, only the columns it needs: memory is one shard's columns
//! plus one counter per distinct class, source address, port and minute.

use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{progress, PipelineError, State, Status, Store};

/// How many talkers and ports the summary lists.
pub const TOP: usize = 10;

/// Most buckets in a summary's timeline (a day of minutes).
pub const TIMELINE_BUCKETS: usize = 1440;

/// Merge minute tallies into the narrowest bucket width (minute, hour, day) that keeps the
/// timeline within [`TIMELINE_BUCKETS`] buckets (a capture spanning months stays small).
fn bucketed(minutes: Vec<Tally>) -> (Vec<Tally>, u64) {
    let mut out = minutes;
    for width in [60u64, 3_600, 86_400] {
        let ns = width as i64 * 1_000_000_000;
        let mut merged: BTreeMap<i64, Tally> = BTreeMap::new();
        for t in &out {
            let k = t.key.parse::<i64>().unwrap_or(0).div_euclid(ns) * ns;
            let e = merged.entry(k).or_insert_with(|| Tally {
                key: k.to_string(),
                ..Tally::default()
            });
            e.flows += t.flows;
            e.bytes += t.bytes;
            e.alerts += t.alerts;
        }
        out = merged.into_values().collect();
        if out.len() <= TIMELINE_BUCKETS || width == 86_400 {
            return (out, width);
        }
    }
    (out, 86_400)
}

/// Flows, bytes and alerts of one key (a talker, a port, a minute).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The key: an address, `proto/port`, or the minute (RFC 3339 is left to readers: ns since
    /// the epoch, floored to the minute).
    pub key: String,
    /// Flows.
    pub flows: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
    /// Flows classified as an attack.
    pub alerts: u64,
}

/// A capture's summary, stored at `captures/ID/summary.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureSummary {
    /// Capture id.
    pub capture: String,
    /// Flows.
    pub flows: u64,
    /// Flows classified as an attack.
    pub alerts: u64,
    /// Flows per predicted class.
    pub classes: BTreeMap<String, u64>,
    /// Sources with the most flows.
    pub top_talkers: Vec<Tally>,
    /// Destination `proto/port` pairs with the most flows.
    pub top_ports: Vec<Tally>,
    /// Flows per time bucket of first packet (key: the bucket's start, ns since the epoch),
    /// at most [`TIMELINE_BUCKETS`] buckets: minutes, or hours or days for longer captures.
    pub timeline: Vec<Tally>,
    /// Width of a timeline bucket in seconds (60, 3600 or 86400).
    #[serde(default)]
    pub timeline_bucket_s: u64,
    /// Mean anomaly score.
    pub anomaly_mean: f64,
    /// Highest anomaly score.
    pub anomaly_max: f64,
    /// The most confident alerts (highest class probability, then anomaly), at most [`TOP`].
    #[serde(default)]
    pub top_alerts: Vec<Alert>,
}

/// One alert of a capture's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Predicted class.
    pub class: String,
    /// Its probability.
    pub probability: f64,
    /// Anomaly score.
    pub anomaly: f64,
    /// `PROTO SRC:PORT -> DST:PORT`.
    pub flow: String,
    /// Packets, both directions.
    pub packets: u64,
    /// Community ID of the flow.
    pub community_id: String,
    /// First packet, ns since the epoch.
    pub first_ts: i64,
}

fn alerts_of(df: &DataFrame) -> PolarsResult<Vec<Alert>> {
    let mask = df.column("alert")?.cast(&DataType::Boolean)?;
    let a = df.filter(mask.bool()?)?;
    if a.height() == 0 {
        return Ok(Vec::new());
    }
    let f = |name: &str| -> PolarsResult<Vec<f64>> {
        let c = a.column(name)?.cast(&DataType::Float64)?;
        Ok(c.f64()?
            .downcast_iter()
            .flat_map(|x| x.iter().map(|v| v.copied().unwrap_or(f64::NAN)))
            .collect())
    };
    let proto: Vec<String> = f("proto")?
        .iter()
        .map(|p| weir_flow::proto_name(*p as u8))
        .collect();
    let (class, cid) = (strings(&a, "class")?, strings(&a, "community_id")?);
    let (src, sport, dst, dport) = (
        strings(&a, "src_ip")?,
        strings(&a, "src_port")?,
        strings(&a, "dst_ip")?,
        strings(&a, "dst_port")?,
    );
    let (p, an, pf, pb, ts) = (
        f("class_probability")?,
        f("anomaly")?,
        f("packets_fwd")?,
        f("packets_bwd")?,
        f("first_ts")?,
    );
    Ok((0..a.height())
        .map(|i| Alert {
            class: class[i].clone(),
            probability: p[i],
            anomaly: an[i],
            flow: format!(
                "{} {}:{} -> {}:{}",
                proto[i], src[i], sport[i], dst[i], dport[i]
            ),
            packets: (pf[i] + pb[i]) as u64,
            community_id: cid[i].clone(),
            first_ts: ts[i] as i64,
        })
        .collect())
}

fn keep_top(alerts: &mut Vec<Alert>) {
    alerts.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then(b.anomaly.total_cmp(&a.anomaly))
            .then(a.first_ts.cmp(&b.first_ts))
            .then(a.flow.cmp(&b.flow))
    });
    alerts.truncate(TOP);
}

/// Key of a capture's summary.
pub fn summary_key(id: &str) -> String {
    format!("captures/{id}/summary.json")
}

/// The result columns the summary reads (the rest of a result is not decoded).
const SUMMARY_COLUMNS: &[&str] = &[
    "community_id",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "first_ts",
    "packets_fwd",
    "packets_bwd",
    "bytes_fwd",
    "bytes_bwd",
    "class",
    "class_probability",
    "alert",
    "anomaly",
];

fn pe(key: &str) -> impl Fn(PolarsError) -> PipelineError + '_ {
    move |e| PipelineError::Data(key.to_string(), e.to_string())
}

/// Merge a grouped frame (`key` column(s) + `flows`, `bytes`, `alerts`) into a map.
fn merge(
    into: &mut HashMap<String, Tally>,
    df: &DataFrame,
    key: impl Fn(usize) -> String,
) -> PolarsResult<()> {
    let get = |name: &str| -> PolarsResult<Vec<u64>> {
        let c = df.column(name)?.cast(&DataType::UInt64)?;
        Ok(c.u64()?
            .downcast_iter()
            .flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(0)))
            .collect())
    };
    let (f, b, a) = (get("flows")?, get("bytes")?, get("alerts")?);
    for i in 0..df.height() {
        let k = key(i);
        let t = into.entry(k.clone()).or_insert_with(|| Tally {
            key: k,
            ..Tally::default()
        });
        t.flows += f[i];
        t.bytes += b[i];
        t.alerts += a[i];
    }
    Ok(())
}

fn strings(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    let c = df.column(name)?.cast(&DataType::String)?;
    Ok(c.str()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|v| v.unwrap_or_default().to_string()))
        .collect())
}

/// Group `df` by `by` and sum `one` (flows), `bytes` and `alerts`.
// polars marks eager group-by aggregations deprecated in favour of its lazy engine; the lazy
// feature would add polars-plan/-expr/-mem-engine to every build for three group-sums per shard.
#[allow(deprecated)]
fn tally(df: &DataFrame, by: &[&str]) -> PolarsResult<DataFrame> {
    let mut g = df
        .group_by(by.iter().copied())?
        .select(["one", "bytes", "alerts"])
        .sum()?;
    g.rename("one_sum", "flows".into())?;
    g.rename("bytes_sum", "bytes".into())?;
    g.rename("alerts_sum", "alerts".into())?;
    Ok(g)
}

fn top(map: HashMap<String, Tally>, n: usize) -> Vec<Tally> {
    let mut v: Vec<Tally> = map.into_values().collect();
    v.sort_by(|a, b| b.flows.cmp(&a.flows).then_with(|| a.key.cmp(&b.key)));
    v.truncate(n);
    v
}

/// Aggregate a capture whose shards are all classified: write the summary and the search
/// layout, mark the capture done (or done-with-warnings when the splitter met damage).
/// Idempotent: running it twice writes the same objects.
pub fn aggregate(store: &dyn Store, id: &str) -> Result<CaptureSummary, PipelineError> {
    let st = progress(store, id)?;
    if st.state != State::Aggregating
        && st.state != State::Done
        && st.state != State::DoneWithWarnings
    {
        return Err(PipelineError::Message(format!(
            "capture {id} is {:?} ({} of {:?} shards classified): nothing to aggregate yet",
            st.state, st.shards_done, st.shards
        )));
    }
    let mut sum = CaptureSummary {
        capture: id.to_string(),
        anomaly_max: f64::NEG_INFINITY,
        ..Default::default()
    };
    let (mut talkers, mut ports, mut minutes) = (HashMap::new(), HashMap::new(), HashMap::new());
    let mut anomaly_total = 0f64;
    for key in store.list(&format!("captures/{id}/results/"))?.iter() {
        let e = pe(key);
        let df = weir_records::parquet_to_frame_columns(&store.get(key)?, SUMMARY_COLUMNS)
            .map_err(&e)?;
        if df.height() == 0 {
            continue;
        }
        let fwd = df
            .column("bytes_fwd")
            .map_err(&e)?
            .cast(&DataType::UInt64)
            .map_err(&e)?;
        let bwd = df
            .column("bytes_bwd")
            .map_err(&e)?
            .cast(&DataType::UInt64)
            .map_err(&e)?;
        let bytes = (fwd.as_materialized_series() + bwd.as_materialized_series()).map_err(&e)?;
        let alerts = df
            .column("alert")
            .map_err(&e)?
            .cast(&DataType::UInt64)
            .map_err(&e)?;
        let ts = crate::search::i64s(&df, "first_ts").map_err(&e)?;
        let minute: Vec<i64> = ts
            .iter()
            .map(|t| t.div_euclid(60_000_000_000) * 60_000_000_000)
            .collect();
        let proto_port: Vec<String> = {
            let p = strings(&df, "proto").map_err(&e)?;
            let d = strings(&df, "dst_port").map_err(&e)?;
            p.iter().zip(&d).map(|(p, d)| format!("{p}/{d}")).collect()
        };
        let mut work = df.select(["class", "src_ip"]).map_err(&e)?;
        work.hstack_mut(&[
            bytes.with_name("bytes".into()).into_column(),
            alerts.with_name("alerts".into()),
            Column::new("minute".into(), minute),
            Column::new("proto_port".into(), proto_port),
            Column::new("one".into(), vec![1u64; df.height()]),
        ])
        .map_err(&e)?;
        sum.flows += work.height() as u64;
        sum.top_alerts.extend(alerts_of(&df).map_err(&e)?);
        keep_top(&mut sum.top_alerts);
        let by_class = tally(&work, &["class"]).map_err(&e)?;
        let names = strings(&by_class, "class").map_err(&e)?;
        let mut classes = HashMap::new();
        merge(&mut classes, &by_class, |i| names[i].clone()).map_err(&e)?;
        for (k, t) in classes {
            *sum.classes.entry(k).or_default() += t.flows;
            sum.alerts += t.alerts;
        }
        for (map, col) in [
            (&mut talkers, "src_ip"),
            (&mut ports, "proto_port"),
            (&mut minutes, "minute"),
        ] {
            let g = tally(&work, &[col]).map_err(&e)?;
            let keys = strings(&g, col).map_err(&e)?;
            merge(map, &g, |i| keys[i].clone()).map_err(&e)?;
        }
        let an = df
            .column("anomaly")
            .map_err(&e)?
            .cast(&DataType::Float64)
            .map_err(&e)?;
        for v in an
            .f64()
            .map_err(&e)?
            .downcast_iter()
            .flat_map(|a| a.iter().flatten().copied().collect::<Vec<_>>())
        {
            anomaly_total += v;
            sum.anomaly_max = sum.anomaly_max.max(v);
        }
    }
    if sum.flows > 0 {
        sum.anomaly_mean = anomaly_total / sum.flows as f64;
    } else {
        sum.anomaly_max = 0.0;
    }
    sum.top_talkers = top(talkers, TOP);
    sum.top_ports = top(ports, TOP);
    (sum.timeline, sum.timeline_bucket_s) = bucketed(minutes.into_values().collect());
    store.put(
        &summary_key(id),
        &serde_json::to_vec_pretty(&sum).unwrap_or_default(),
    )?;
    let mut done: Status = st;
    done.state = if done.warnings.is_empty() {
        State::Done
    } else {
        State::DoneWithWarnings
    };
    done.save(store)?;
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_timelines_get_wider_buckets() {
        let minute = |m: i64, flows| Tally {
            key: (m * 60_000_000_000).to_string(),
            flows,
            bytes: 10,
            alerts: 1,
        };
        let (t, w) = bucketed(vec![minute(0, 1), minute(1, 2), minute(5, 3)]);
        assert_eq!((t.len(), w), (3, 60));
        // Two days of minutes: 2,880 buckets -> 48 hours.
        let (t, w) = bucketed((0..2880).map(|m| minute(m, 1)).collect());
        assert_eq!((t.len(), w), (48, 3_600));
        assert_eq!(t[1].key, (3_600_000_000_000i64).to_string());
        assert_eq!(t.iter().map(|x| x.flows).sum::<u64>(), 2880);
        assert_eq!(t.iter().map(|x| x.alerts).sum::<u64>(), 2880);
        // Ten years of hours -> days, whatever the count.
        let (t, w) = bucketed((0..87_600).map(|h| minute(h * 60, 1)).collect());
        assert_eq!(w, 86_400);
        assert_eq!(t.len(), 3650);
    }
}
