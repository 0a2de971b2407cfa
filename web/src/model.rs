//! What the pages show, as the server functions return it: plain data, the same types on the
//! server (SSR) and in the browser (hydration), no polars and no store.

use serde::{Deserialize, Serialize};
pub use weir_wire::federation::{CurrentModel, FederationView, RoundRow, VersionRow};
pub use weir_wire::status::{State, Status};
pub use weir_wire::summary::CaptureSummary;

/// A capture on the captures page: its status as the pipeline stores it (the fields read
/// through it: `c.flows`, `c.state`...) and what the page adds from the split report and the
/// summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureRow {
    /// `captures/ID/status.json`.
    pub status: Status,
    /// Bytes of the capture read by the splitter (known once split).
    pub bytes: Option<u64>,
    /// Time of its first and last packet (RFC 3339), once aggregated.
    pub first: Option<String>,
    pub last: Option<String>,
}

impl std::ops::Deref for CaptureRow {
    type Target = Status;
    fn deref(&self) -> &Status {
        &self.status
    }
}

impl CaptureRow {
    /// Whether the capture will change no more.
    pub fn settled(&self) -> bool {
        self.state.is_final()
    }

    /// Progress as a fraction, when it can be told.
    pub fn progress(&self) -> Option<f64> {
        match (self.state, self.shards) {
            (s, _) if s.has_results() => Some(1.0),
            (State::Classifying | State::Aggregating, Some(n)) if n > 0 => {
                Some(f64::from(self.shards_done) / f64::from(n))
            }
            _ => None,
        }
    }
}

/// A capture's dashboard.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub capture: CaptureRow,
    /// `summary.json` as the aggregator wrote it (none until aggregated).
    pub summary: Option<CaptureSummary>,
    /// Flows by anomaly percentile, in bars of 5 (0-5, ..., 95-100).
    pub anomaly_percentiles: Vec<u64>,
    /// The model versions that decided its flows.
    pub models: Vec<String>,
}

/// What the search form sends: the URL's query string, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchArgs {
    #[serde(default)]
    pub q: String,
    /// Capture ids, comma-separated; empty: all.
    #[serde(default)]
    pub capture: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub desc: bool,
    #[serde(default)]
    pub offset: usize,
    #[serde(default)]
    pub limit: usize,
    /// Filters beside the query, each one more `and` term (see [`compose`]): an address or
    /// CIDR, on which side (`src`, `dst`, or either: `ip`).
    #[serde(default)]
    pub addr: String,
    #[serde(default)]
    pub side: String,
    /// A port, either side.
    #[serde(default)]
    pub port: String,
    /// tcp, udp, icmp, icmp6 or a number.
    #[serde(default)]
    pub proto: String,
    /// Any of these classes.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Minimum probability of the predicted class.
    #[serde(default)]
    pub min_p: String,
    /// Minimum anomaly score.
    #[serde(default)]
    pub min_anomaly: String,
    /// A Community ID.
    #[serde(default)]
    pub cid: String,
}

/// The query a search runs: `q` and one term per filled-in filter field.
pub fn compose(a: &SearchArgs) -> String {
    let mut terms: Vec<String> = Vec::new();
    let q = a.q.trim();
    if !q.is_empty() {
        terms.push(
            if q.to_ascii_lowercase().split_whitespace().any(|w| w == "or") {
                format!("({q})")
            } else {
                q.to_string()
            },
        );
    }
    let side = match a.side.as_str() {
        "src" | "dst" => a.side.as_str(),
        _ => "ip",
    };
    let mut add = |field: &str, op: &str, v: &str| {
        let v = v.trim();
        if !v.is_empty() {
            terms.push(format!("{field}{op}{}", query_value(v)));
        }
    };
    add(side, " ", &a.addr);
    add("port", " ", &a.port);
    add("proto", " ", &a.proto);
    add("p", " >= ", &a.min_p);
    add("anomaly", " >= ", &a.min_anomaly);
    add("cid", " ", &a.cid);
    let classes: Vec<String> = a
        .classes
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| format!("class {}", query_value(c.trim())))
        .collect();
    match classes.len() {
        0 => {}
        1 => terms.push(classes[0].clone()),
        _ => terms.push(format!("({})", classes.join(" or "))),
    }
    terms.join(" and ")
}

/// One flow in a results table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowRow {
    pub capture: String,
    pub shard: u32,
    pub row: u32,
    pub first_ts: String,
    pub last_ts: String,
    pub proto: u32,
    pub src_ip: String,
    pub src_port: u32,
    pub dst_ip: String,
    pub dst_port: u32,
    pub community_id: String,
    pub packets: u64,
    pub bytes: u64,
    pub class: String,
    pub class_probability: f64,
    pub alert: bool,
    pub anomaly: f64,
    pub anomaly_percentile: f64,
    pub model_version: String,
}

/// A bar of the time histogram.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub start: String,
    pub end: String,
    pub flows: u64,
    pub alerts: u64,
}

/// A query the search could not run, said where it is wrong.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BadInput {
    pub message: String,
    /// The query with a caret under the mistake, when the mistake is in the query.
    pub pointed: Option<String>,
}

/// One page of a search.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchView {
    pub args: SearchArgs,
    /// The model's classes (for the class filter).
    pub classes: Vec<String>,
    /// The query as weir reads it.
    pub canonical: String,
    pub total: usize,
    pub rows: Vec<FlowRow>,
    pub histogram: Vec<Bar>,
    /// (column, query field, values with counts).
    pub top: Vec<(String, String, Vec<(String, u64)>)>,
    pub error: Option<BadInput>,
}

/// One column of a flow's full row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
    pub value: String,
    pub unit: String,
    pub about: String,
}

/// How much one feature moved the verdict.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub feature: String,
    pub value: String,
    /// The predicted class's probability with the flow as it is, minus with this feature
    /// replaced by the training mean: positive = the feature pushed toward the verdict.
    pub delta: f64,
}

/// A flow's detail page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowDetail {
    pub flow: FlowRow,
    pub end_reason: String,
    pub vlan: u32,
    pub tunnel: Option<String>,
    pub packets_fwd: u64,
    pub packets_bwd: u64,
    pub bytes_fwd: u64,
    pub bytes_bwd: u64,
    pub features: Vec<Named>,
    /// Every class with its probability, most likely first.
    pub probabilities: Vec<(String, f64)>,
    /// The features that moved the verdict most, or why there is no explanation.
    pub explanation: Result<Vec<Attribution>, String>,
    /// Whether the capture's packets can be cut out (the source is readable).
    pub carvable: Result<(), String>,
}

/// The label of an IP protocol number.
pub fn proto_name(p: u32) -> String {
    match p {
        1 => "ICMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        58 => "ICMPv6".into(),
        n => format!("proto {n}"),
    }
}

/// A value as the query language takes it: quoted when it is not one word.
pub fn query_value(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '-' | '_'))
    {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('"', ""))
    }
}

/// `q` with one more term: `field value`, or `not field value` (click a value to filter on
/// it or to exclude it). A query with `or` is parenthesized so the new term applies to all.
pub fn refine(q: &str, field: &str, value: &str, exclude: bool) -> String {
    let term = format!(
        "{}{field} {}",
        if exclude { "not " } else { "" },
        query_value(value)
    );
    let q = q.trim();
    if q.is_empty() {
        term
    } else if q.to_ascii_lowercase().split_whitespace().any(|w| w == "or") {
        format!("({q}) and {term}")
    } else {
        format!("{q} and {term}")
    }
}

/// A URL query string for `args` (every non-default field, percent-encoded).
pub fn search_href(args: &SearchArgs) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: &str| {
        if !v.is_empty() {
            parts.push(format!("{k}={}", encode(v)));
        }
    };
    add("q", &args.q);
    add("capture", &args.capture);
    add("from", &args.from);
    add("to", &args.to);
    add("sort", &args.sort);
    if args.desc {
        add("desc", "true");
    }
    if args.offset > 0 {
        add("offset", &args.offset.to_string());
    }
    if args.limit > 0 {
        add("limit", &args.limit.to_string());
    }
    add("addr", &args.addr);
    add("side", &args.side);
    add("port", &args.port);
    add("proto", &args.proto);
    for c in &args.classes {
        add("class", c);
    }
    add("min_p", &args.min_p);
    add("min_anomaly", &args.min_anomaly);
    add("cid", &args.cid);
    if parts.is_empty() {
        "/search".into()
    } else {
        format!("/search?{}", parts.join("&"))
    }
}

/// Percent-encoding for a query-string value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in B/KB/MB/GB.
pub fn size(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// How a server function says that what a page names is not there (a capture, a flow): the
/// page shows the rest of the message and answers 404.
pub const MISSING: &str = "not found: ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_done_with_warnings_is_settled_and_complete() {
        let row = |state: State, shards: Option<u32>, done: u32| CaptureRow {
            status: Status {
                state,
                shards,
                shards_done: done,
                ..Status::default()
            },
            ..CaptureRow::default()
        };
        for s in [State::Done, State::DoneWithWarnings] {
            assert!(row(s, Some(4), 4).settled(), "{s:?}");
            assert_eq!(row(s, Some(4), 4).progress(), Some(1.0), "{s:?}");
        }
        assert!(row(State::Failed, None, 0).settled());
        assert_eq!(row(State::Failed, None, 0).progress(), None);
        assert!(!row(State::Classifying, Some(4), 1).settled());
        assert_eq!(row(State::Classifying, Some(4), 1).progress(), Some(0.25));
    }

    #[test]
    fn refining_a_query_adds_one_term() {
        assert_eq!(refine("", "src", "10.0.0.1", false), "src 10.0.0.1");
        assert_eq!(
            refine("dport 80", "class", "Port Scan", true),
            "dport 80 and not class \"Port Scan\""
        );
        assert_eq!(
            refine("class DDoS or class DoS", "dst", "fe80::1", false),
            "(class DDoS or class DoS) and dst fe80::1"
        );
    }

    #[test]
    fn filters_become_terms() {
        let a = SearchArgs {
            q: "dport 80 or dport 443".into(),
            addr: "10.0.0.0/8".into(),
            side: "src".into(),
            classes: vec!["Port Scan".into(), "DDoS".into()],
            min_p: "0.9".into(),
            ..Default::default()
        };
        assert_eq!(
            compose(&a),
            "(dport 80 or dport 443) and src 10.0.0.0/8 and p >= 0.9 and (class \"Port Scan\" or class DDoS)"
        );
        assert_eq!(compose(&SearchArgs::default()), "");
        let one = SearchArgs {
            port: "53".into(),
            addr: "fe80::1".into(),
            ..Default::default()
        };
        assert_eq!(compose(&one), "ip fe80::1 and port 53");
        assert!(search_href(&a).contains("&class=Port%20Scan&class=DDoS&min_p=0.9"));
    }

    #[test]
    fn hrefs_and_numbers() {
        let a = SearchArgs {
            q: "class \"Port Scan\"".into(),
            offset: 100,
            ..Default::default()
        };
        assert_eq!(
            search_href(&a),
            "/search?q=class%20%22Port%20Scan%22&offset=100"
        );
        assert_eq!(search_href(&SearchArgs::default()), "/search");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_500_000), "1.5 MB");
    }
}
