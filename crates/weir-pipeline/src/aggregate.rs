//! The aggregator: once every shard has its result, build the capture's summary with polars
//! (counts per class, alerts grouped by attacker or victim, top sources, destinations and
//! services, a timeline, anomaly statistics, top alerts).
//! The search layout is already there: the classifier wrote it per shard (see `search`).
//! It reads one result at a time, only the columns it needs: memory is one shard's columns
//! plus one counter per distinct class, source address, port and minute.

use std::collections::{BTreeMap, HashMap};
use weir_wire::columns as col;

use polars::prelude::*;
use weir_records::columns::{f64s, i64s, strings, u64s};
pub use weir_wire::summary::{Alert, AlertGroup, CaptureSummary, Service, Tally};

use crate::error::to_json;
use crate::{
    progress, results_prefix, rfc3339, summary_key, update_status, PipelineError, State, Store,
};

/// How many sources, destinations, services, alert groups and alerts the summary lists.
pub const TOP: usize = 10;

/// Most buckets in a summary's timeline (a day of minutes).
pub const TIMELINE_BUCKETS: usize = 1440;

/// A flow whose anomaly percentile is at least this is counted as unusual.
pub const UNUSUAL_PERCENTILE: f64 = 99.0;

/// How many attackers or victims an alert group names (the rest are counted).
pub const GROUP_NAMES: usize = 5;

/// Merge minute tallies (keys: ns since the epoch) into the narrowest bucket width (minute,
/// hour, day) that keeps the timeline within [`TIMELINE_BUCKETS`] buckets (a capture spanning
/// months stays small); keys become the buckets' starts in RFC 3339.
fn bucketed(minutes: Vec<Tally>) -> (Vec<Tally>, u64) {
    let mut out = minutes;
    let mut chosen = 86_400;
    for width in [60u64, 3_600, 86_400] {
        let ns = width as i64 * 1_000_000_000;
        let mut merged: BTreeMap<i64, Tally> = BTreeMap::new();
        for t in &out {
            let k = t.key.parse::<i64>().unwrap_or(0).div_euclid(ns) * ns;
            let e = merged.entry(k).or_insert_with(|| Tally {
                key: k.to_string(),
                ..Tally::default()
            });
            e.add(t);
        }
        out = merged.into_values().collect();
        if out.len() <= TIMELINE_BUCKETS {
            chosen = width;
            break;
        }
    }
    for t in &mut out {
        t.key = rfc3339(t.key.parse::<i64>().unwrap_or(0));
    }
    (out, chosen)
}

fn is_icmp(proto: u8) -> bool {
    proto == 1 || proto == 58
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 33)
}

/// A flow as a person reads it: `TCP 10.0.0.1:51234 -> 10.0.0.2:80`,
/// `ICMP 10.0.0.1 -> 10.0.0.2 type 8 code 0` (ICMP flows keep type and code in the port
/// columns), `GRE 10.0.0.1 -> 10.0.0.2`.
pub fn flow_text(proto: u8, src: &str, sport: u32, dst: &str, dport: u32) -> String {
    let name = weir_flow::proto_name(proto);
    let host = |ip: &str, port: u32| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    if has_ports(proto) {
        format!("{name} {} -> {}", host(src, sport), host(dst, dport))
    } else if is_icmp(proto) {
        format!("{name} {src} -> {dst} type {sport} code {dport}")
    } else {
        format!("{name} {src} -> {dst}")
    }
}

/// The service a flow went to: `tcp/80`, `icmp type 8 code 0`, `gre`.
fn service_to(proto: u8, sport: u32, dport: u32) -> String {
    let name = weir_flow::proto_name(proto).to_ascii_lowercase();
    if has_ports(proto) {
        format!("{name}/{dport}")
    } else if is_icmp(proto) {
        format!("{name} type {sport} code {dport}")
    } else {
        name
    }
}

/// The service a flow came from (the initiator's port), for protocols with ports.
fn service_from(proto: u8, sport: u32) -> Option<String> {
    has_ports(proto).then(|| {
        format!(
            "{}/{sport}",
            weir_flow::proto_name(proto).to_ascii_lowercase()
        )
    })
}

/// Whether answers from this service are what a reflection/amplification flood sends: a
/// well-known port (DNS, NTP, chargen, SNMP, LDAP, ...) or a registered one that amplifies
/// (SSDP 1900, ARD 3283, WS-Discovery 3702, mDNS 5353, CoAP 5683, Ubiquiti 10001, memcached
/// 11211). A scanner's fixed source port is neither: its probes read as "on N ports".
fn reflects(service: &str) -> bool {
    service
        .rsplit('/')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p < 1024 || [1900, 3283, 3702, 5353, 5683, 10001, 11211].contains(&p))
}

/// `1 flow`, `2 flows`, `10,000 flows`.
pub fn flows_text(n: u64) -> String {
    format!("{} flow{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// `12345678` as `12,345,678`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The result columns the summary reads (the rest of a result is not decoded).
const SUMMARY_COLUMNS: &[&str] = &[
    col::COMMUNITY_ID,
    col::PROTO,
    col::SRC_IP,
    col::SRC_PORT,
    col::DST_IP,
    col::DST_PORT,
    col::FIRST_TS,
    col::LAST_TS,
    col::PACKETS_FWD,
    col::PACKETS_BWD,
    col::BYTES_FWD,
    col::BYTES_BWD,
    col::CLASS,
    col::CLASS_PROBABILITY,
    col::ALERT,
    col::ANOMALY,
    col::ANOMALY_PERCENTILE,
];

fn pe(key: &str) -> impl Fn(PolarsError) -> PipelineError + '_ {
    move |e| PipelineError::corrupt(key, e)
}

/// Group `df` by `by` and sum `one` (flows), `packets`, `bytes` and `alerts`, merged into
/// `into` by key (null or empty keys are skipped).
// polars marks eager group-by aggregations deprecated in favour of its lazy engine; the lazy
// feature would add polars-plan/-expr/-mem-engine to every build for a few group-sums per shard.
#[allow(deprecated)]
fn tally_into(into: &mut HashMap<String, Tally>, df: &DataFrame, by: &str) -> PolarsResult<()> {
    let g = df
        .group_by([by])?
        .select(["one", "packets", "bytes", "alerts"])
        .sum()?;
    let keys = strings(&g, by)?;
    let (f, p, b, a) = (
        u64s(&g, "one_sum")?,
        u64s(&g, "packets_sum")?,
        u64s(&g, "bytes_sum")?,
        u64s(&g, "alerts_sum")?,
    );
    for (i, k) in keys.into_iter().enumerate() {
        if k.is_empty() {
            continue;
        }
        into.entry(k.clone())
            .or_insert_with(|| Tally {
                key: k,
                ..Tally::default()
            })
            .add(&Tally {
                key: String::new(),
                flows: f[i],
                packets: p[i],
                bytes: b[i],
                alerts: a[i],
            });
    }
    Ok(())
}

fn top(map: HashMap<String, Tally>, n: usize) -> Vec<Tally> {
    let mut v: Vec<Tally> = map.into_values().collect();
    v.sort_by(|a, b| b.flows.cmp(&a.flows).then_with(|| a.key.cmp(&b.key)));
    v.truncate(n);
    v
}

/// Services from the tallies of flows to and from each.
fn top_services(to: HashMap<String, Tally>, from: HashMap<String, Tally>) -> Vec<Service> {
    let mut all: HashMap<String, Service> = HashMap::new();
    for (map, dir_to) in [(to, true), (from, false)] {
        for (k, t) in map {
            let s = all.entry(k.clone()).or_insert_with(|| {
                let (proto, port) = match k.split_once('/') {
                    Some((p, n)) => (p.to_string(), n.parse().ok()),
                    None => (k.split(' ').next().unwrap_or_default().to_string(), None),
                };
                Service {
                    service: k,
                    proto,
                    port,
                    ..Service::default()
                }
            });
            if dir_to {
                s.flows_to += t.flows;
            } else {
                s.flows_from += t.flows;
            }
            s.packets += t.packets;
            s.bytes += t.bytes;
            s.alerts += t.alerts;
        }
    }
    // A client's ephemeral port is a "service" of one flow: not worth a line.
    let mut v: Vec<Service> = all
        .into_values()
        .filter(|s| s.flows_to > 0 || s.flows_from > 1)
        .collect();
    v.sort_by(|a, b| {
        (b.flows_to + b.flows_from)
            .cmp(&(a.flows_to + a.flows_from))
            .then_with(|| a.service.cmp(&b.service))
    });
    v.truncate(TOP);
    v
}

/// Alert flows of one class and one host (the attacker, or the victim).
#[derive(Default)]
struct GroupAcc {
    flows: u64,
    packets: u64,
    bytes: u64,
    first: i64,
    last: i64,
    max_p: f64,
    evidence: String,
    /// The hosts on the other side and their flows.
    peers: HashMap<String, u64>,
    to: HashMap<String, u64>,
    from: HashMap<String, u64>,
}

/// One alert flow, as the grouping needs it.
struct AlertFlow<'a> {
    src: &'a str,
    dst: &'a str,
    to: String,
    from: Option<String>,
    packets: u64,
    bytes: u64,
    first: i64,
    last: i64,
    p: f64,
    evidence: &'a str,
}

impl GroupAcc {
    fn add(&mut self, peer: &str, f: &AlertFlow<'_>) {
        if self.flows == 0 {
            (self.first, self.last) = (f.first, f.last);
        }
        self.flows += 1;
        self.packets += f.packets;
        self.bytes += f.bytes;
        self.first = self.first.min(f.first);
        self.last = self.last.max(f.last);
        self.max_p = self.max_p.max(f.p);
        if !f.evidence.is_empty() {
            self.evidence = f.evidence.to_string();
        }
        *self.peers.entry(peer.to_string()).or_default() += 1;
        *self.to.entry(f.to.clone()).or_default() += 1;
        if let Some(s) = &f.from {
            *self.from.entry(s.clone()).or_default() += 1;
        }
    }
}

fn most(map: &HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The alert flows of a capture, grouped per class by attacker and by victim.
#[derive(Default)]
struct Groups {
    by_src: HashMap<(String, String), GroupAcc>,
    by_dst: HashMap<(String, String), GroupAcc>,
}

impl Groups {
    fn add(&mut self, class: &str, f: &AlertFlow<'_>) {
        self.by_src
            .entry((class.to_string(), f.src.to_string()))
            .or_default()
            .add(f.dst, f);
        self.by_dst
            .entry((class.to_string(), f.dst.to_string()))
            .or_default()
            .add(f.src, f);
    }

    /// Per class, the orientation with fewer groups: few attackers and their victims (scans,
    /// brute force), or few victims and their attackers (floods from many sources).
    fn finish(self) -> Vec<AlertGroup> {
        let mut count: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (c, _) in self.by_src.keys() {
            count.entry(c).or_default().0 += 1;
        }
        for (c, _) in self.by_dst.keys() {
            count.entry(c).or_default().1 += 1;
        }
        let victim_side: Vec<String> = count
            .iter()
            .filter(|(_, (s, d))| d < s)
            .map(|(c, _)| c.to_string())
            .collect();
        let mut out = Vec::new();
        for ((class, host), acc) in self.by_src {
            if !victim_side.contains(&class) {
                out.push(group(class, host, acc, true));
            }
        }
        for ((class, host), acc) in self.by_dst {
            if victim_side.contains(&class) {
                out.push(group(class, host, acc, false));
            }
        }
        out.sort_by(|a, b| {
            b.flows
                .cmp(&a.flows)
                .then_with(|| a.class.cmp(&b.class))
                .then_with(|| a.line.cmp(&b.line))
        });
        out.truncate(TOP);
        out
    }
}

/// `10.0.0.1`, or `3,371 hosts (10.0.0.1, 10.0.0.2, ...)`.
fn hosts(names: &[String], count: u64) -> String {
    if count <= 1 {
        return names.first().cloned().unwrap_or_default();
    }
    let shown = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    let more = if count as usize > names.len().min(3) {
        ", ..."
    } else {
        ""
    };
    format!("{} hosts ({shown}{more})", thousands(count))
}

fn group(class: String, host: String, acc: GroupAcc, attacker: bool) -> AlertGroup {
    let peers: Vec<String> = most(&acc.peers, GROUP_NAMES)
        .into_iter()
        .map(|p| p.0)
        .collect();
    let n_peers = acc.peers.len() as u64;
    let (attackers, attacker_count, victims, victim_count) = if attacker {
        (vec![host], 1, peers, n_peers)
    } else {
        (peers, n_peers, vec![host], 1)
    };
    let to = most(&acc.to, 1);
    let from = most(&acc.from, 1);
    let service = match (to.first(), from.first()) {
        (Some((s, n)), _) if 2 * n >= acc.flows => format!("on {s}"),
        (_, Some((s, n))) if 2 * n >= acc.flows && reflects(s) => format!("from {s}"),
        (Some((s, _)), _) => {
            let proto = s.split(['/', ' ']).next().unwrap_or_default();
            if acc.to.keys().all(|k| k.starts_with(&format!("{proto}/"))) {
                format!("on {} {proto} ports", thousands(acc.to.len() as u64))
            } else {
                format!("on {} services", thousands(acc.to.len() as u64))
            }
        }
        _ => String::new(),
    };
    let (first, last) = (rfc3339(acc.first), rfc3339(acc.last));
    let why = if acc.evidence.is_empty() {
        format!("model p up to {:.2}", acc.max_p)
    } else {
        acc.evidence.clone()
    };
    let line = format!(
        "{class}: {} -> {} {service}, {}, {first} to {last}; {why}",
        hosts(&attackers, attacker_count),
        hosts(&victims, victim_count),
        flows_text(acc.flows),
    );
    AlertGroup {
        class,
        attackers,
        attacker_count,
        victims,
        victim_count,
        service: service.trim_start_matches("on ").to_string(),
        services: acc.to.len() as u64,
        flows: acc.flows,
        packets: acc.packets,
        bytes: acc.bytes,
        first,
        last,
        max_probability: acc.max_p,
        evidence: acc.evidence,
        line,
    }
}

fn keep_top(alerts: &mut Vec<(i64, Alert)>) {
    alerts.sort_by(|(ta, a), (tb, b)| {
        b.probability
            .total_cmp(&a.probability)
            .then(b.anomaly.total_cmp(&a.anomaly))
            .then(ta.cmp(tb))
            .then(a.flow.cmp(&b.flow))
    });
    alerts.truncate(TOP);
}

/// Aggregate a capture whose shards are all classified: write the summary, mark the capture
/// done (or done-with-warnings when the splitter met damage). The search layout is already
/// there (written per shard by the classifier). Idempotent: running it twice writes the same
/// objects.
pub fn aggregate(store: &dyn Store, id: &str) -> Result<CaptureSummary, PipelineError> {
    let st = progress(store, id)?;
    if st.state == State::Failed {
        return Err(PipelineError::Failed {
            capture: id.to_string(),
            reason: st.reason.clone().unwrap_or_default(),
        });
    }
    if st.state != State::Aggregating
        && st.state != State::Done
        && st.state != State::DoneWithWarnings
    {
        return Err(PipelineError::NotReady {
            capture: id.to_string(),
            state: st.state.name(),
            done: st.shards_done,
            shards: st.shards.unwrap_or(0),
        });
    }
    let mut sum = CaptureSummary {
        capture: id.to_string(),
        anomaly_max: f64::NEG_INFINITY,
        ..Default::default()
    };
    let mut maps: [HashMap<String, Tally>; 6] = Default::default();
    let mut groups = Groups::default();
    let mut top_alerts: Vec<(i64, Alert)> = Vec::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    let mut anomaly_total = 0f64;
    for key in store.list(&results_prefix(id))?.iter() {
        let e = pe(key);
        let bytes = store.get(key)?;
        // With the behaviour detectors' evidence; a result written before them has none.
        let with_evidence: Vec<&str> = SUMMARY_COLUMNS
            .iter()
            .copied()
            .chain([col::EVIDENCE])
            .collect();
        let df = weir_records::parquet_to_frame_columns(&bytes, &with_evidence)
            .or_else(|_| weir_records::parquet_to_frame_columns(&bytes, SUMMARY_COLUMNS))
            .map_err(&e)?;
        let n = df.height();
        if n == 0 {
            continue;
        }
        let num = |name: &str| u64s(&df, name).map_err(&e);
        let (proto, sport, dport) = (num(col::PROTO)?, num(col::SRC_PORT)?, num(col::DST_PORT)?);
        let (pf, pb, bf, bb) = (
            num(col::PACKETS_FWD)?,
            num(col::PACKETS_BWD)?,
            num(col::BYTES_FWD)?,
            num(col::BYTES_BWD)?,
        );
        let alert: Vec<bool> = num(col::ALERT)?.iter().map(|a| *a != 0).collect();
        let ts = i64s(&df, col::FIRST_TS).map_err(&e)?;
        let te = i64s(&df, col::LAST_TS).map_err(&e)?;
        let (src, dst, class) = (
            strings(&df, col::SRC_IP).map_err(&e)?,
            strings(&df, col::DST_IP).map_err(&e)?,
            strings(&df, col::CLASS).map_err(&e)?,
        );
        let (prob, anomaly, pct) = (
            f64s(&df, col::CLASS_PROBABILITY).map_err(&e)?,
            f64s(&df, col::ANOMALY).map_err(&e)?,
            f64s(&df, col::ANOMALY_PERCENTILE).map_err(&e)?,
        );
        let to: Vec<String> = (0..n)
            .map(|i| service_to(proto[i] as u8, sport[i] as u32, dport[i] as u32))
            .collect();
        let from: Vec<Option<String>> = (0..n)
            .map(|i| service_from(proto[i] as u8, sport[i] as u32))
            .collect();
        let packets: Vec<u64> = pf.iter().zip(&pb).map(|(a, b)| a + b).collect();
        let bytes: Vec<u64> = bf.iter().zip(&bb).map(|(a, b)| a + b).collect();
        let minute: Vec<String> = ts
            .iter()
            .map(|t| (t.div_euclid(60_000_000_000) * 60_000_000_000).to_string())
            .collect();
        let cid = strings(&df, col::COMMUNITY_ID).map_err(&e)?;
        // Shards written before the behaviour detectors have no evidence column.
        let evidence = match df.column(col::EVIDENCE) {
            Ok(_) => strings(&df, col::EVIDENCE).map_err(&e)?,
            Err(_) => vec![String::new(); n],
        };
        for i in 0..n {
            first = first.min(ts[i]);
            last = last.max(te[i]);
            if !anomaly[i].is_nan() {
                anomaly_total += anomaly[i];
                sum.anomaly_max = sum.anomaly_max.max(anomaly[i]);
            }
            if pct[i] >= UNUSUAL_PERCENTILE {
                sum.unusual_flows += 1;
            }
            if !alert[i] {
                continue;
            }
            let f = AlertFlow {
                src: &src[i],
                dst: &dst[i],
                to: to[i].clone(),
                from: from[i].clone(),
                packets: packets[i],
                bytes: bytes[i],
                first: ts[i],
                last: te[i],
                p: prob[i],
                evidence: &evidence[i],
            };
            groups.add(&class[i], &f);
            top_alerts.push((
                ts[i],
                Alert {
                    class: class[i].clone(),
                    probability: prob[i],
                    anomaly: anomaly[i],
                    anomaly_percentile: (!pct[i].is_nan()).then_some(pct[i]),
                    flow: flow_text(
                        proto[i] as u8,
                        &src[i],
                        sport[i] as u32,
                        &dst[i],
                        dport[i] as u32,
                    ),
                    packets: packets[i],
                    community_id: cid[i].clone(),
                    first: rfc3339(ts[i]),
                },
            ));
        }
        keep_top(&mut top_alerts);
        let work = DataFrame::new(
            n,
            vec![
                Column::new(col::CLASS.into(), class),
                Column::new("src".into(), src),
                Column::new("dst".into(), dst),
                Column::new("to".into(), to),
                Column::new("from".into(), from),
                Column::new("minute".into(), minute),
                Column::new("one".into(), vec![1u64; n]),
                Column::new("packets".into(), packets),
                Column::new("bytes".into(), bytes),
                Column::new(
                    "alerts".into(),
                    alert.iter().map(|a| u64::from(*a)).collect::<Vec<_>>(),
                ),
            ],
        )
        .map_err(&e)?;
        sum.flows += n as u64;
        for (map, col) in maps
            .iter_mut()
            .zip(["class", "src", "dst", "to", "from", "minute"])
        {
            tally_into(map, &work, col).map_err(&e)?;
        }
    }
    let [classes, sources, destinations, to, from, minutes] = maps;
    let mut alerting: Vec<(String, u64)> = Vec::new();
    for (k, t) in classes {
        sum.alerts += t.alerts;
        if t.alerts > 0 {
            alerting.push((k.clone(), t.alerts));
        }
        sum.classes.insert(k, t.flows);
    }
    alerting.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if sum.flows > 0 {
        sum.anomaly_mean = anomaly_total / sum.flows as f64;
        (sum.first, sum.last) = (rfc3339(first), rfc3339(last));
    } else {
        sum.anomaly_max = 0.0;
    }
    sum.top_sources = top(sources, TOP);
    sum.top_destinations = top(destinations, TOP);
    sum.top_services = top_services(to, from);
    sum.alert_groups = groups.finish();
    sum.top_alerts = top_alerts.into_iter().map(|(_, a)| a).collect();
    (sum.timeline, sum.timeline_bucket_s) = bucketed(minutes.into_values().collect());
    let key = summary_key(id);
    store.put(&key, &to_json(&key, &sum)?)?;
    let alert_classes: Vec<String> = alerting
        .iter()
        .take(3)
        .map(|(c, n)| format!("{c} {}", thousands(*n)))
        .collect();
    // Done, unless the status moved on meanwhile (another upload version: not ours).
    update_status(store, id, |cur| {
        let cur = cur?;
        if cur.source_version != st.source_version || cur.state.is_final() {
            return None;
        }
        let mut done = cur.clone();
        done.alerts = Some(sum.alerts);
        done.alert_classes = alert_classes.clone();
        done.state = if done.warnings.is_empty() {
            State::Done
        } else {
            State::DoneWithWarnings
        };
        Some(done)
    })?;
    Ok(sum)
}

#[cfg(test)]
mod tests;
