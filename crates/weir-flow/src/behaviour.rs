//! Host behaviour: what a host did across many flows, which no single flow shows.
//!
//! A port scan is ten thousand one-packet flows; a brute force is a hundred ordinary SSH
//! logins; a flood is thousands of datagrams that each look like any other. A per-flow model
//! sees none of that. [`BehaviourTracker`] watches the flow stream (the flow stage's output
//! order, so its verdicts depend only on the capture) and keeps, per host, service and pair,
//! what the detectors below need. A flow that completes a pattern, and every later flow of
//! the same pattern, gets a [`Finding`]: the class, the detector, and the evidence in words.
//!
//! The detectors are fixed rules from how these attacks work, not fitted to a capture; each
//! threshold is documented on its constant. They are judged with the model, source by source
//! (`weir eval` leaves one source out at a time, models/EVAL.md). They learn nothing from the
//! data, but they were written with those captures in view, so their figures there are
//! optimistic (models/MODEL_CARD.md).
//!
//! Memory: every key is forgotten after [`STATE_IDLE_NS`] without a flow, and no key keeps
//! more than a bounded set (distinct ports, hosts or start times are capped), so the state is
//! bounded by the number of hosts active in the last ten minutes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::features::FEATURES;
use crate::FlowRecord;

type Hasher = foldhash::fast::RandomState;

/// The model alone raises no alert on a flow of fewer packets than this. One packet shows no
/// behaviour: scans and floods of single packets are the detectors' to judge, across flows,
/// and a lone packet's bytes are the payload signals' to judge. Lone odd or malformed packets
/// are what the model most often took for DoS (the robustness corpus, models/EVAL.md).
pub const MODEL_MIN_PACKETS: u64 = 2;

/// Whether the model's verdict on a flow of `packets` packets (both directions) may raise an
/// alert on its own ([`MODEL_MIN_PACKETS`]); a detector's finding alerts whatever its size.
pub fn model_may_alert(packets: u64) -> bool {
    packets >= MODEL_MIN_PACKETS
}

/// Which detector fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// One source probing many ports of one host.
    PortScan,
    /// One source probing one service (or ICMP echo) on many hosts.
    Sweep,
    /// Many short authentication-sized sessions from one source to one service.
    BruteForce,
    /// A packet flood at one destination that it does not answer.
    Flood,
    /// Unsolicited answers of a reflection service (DNS, NTP, SSDP, ...) converging on one host.
    Reflection,
    /// Many HTTP requests started and never finished (Slowloris, slow headers/body).
    SlowDos,
    /// A burst of HTTP requests from one source to one server.
    HttpFlood,
    /// Connections at a regular interval to one service (C2 beaconing).
    Beacon,
    /// Queries for long encoded names to one DNS server: data tunnelled through DNS.
    DnsTunnel,
    /// A long-lived remote-control session: small messages both ways for minutes, to a
    /// service port that is not a well-known one.
    C2Session,
    /// An attack in a request's own bytes (injection, JNDI lookup, Shellshock, Heartbleed).
    Payload,
}

impl Detector {
    /// Its name in reports and the `behaviour` column.
    pub fn name(self) -> &'static str {
        match self {
            Detector::PortScan => "port_scan",
            Detector::Sweep => "sweep",
            Detector::BruteForce => "brute_force",
            Detector::Flood => "flood",
            Detector::Reflection => "reflection",
            Detector::SlowDos => "slow_dos",
            Detector::HttpFlood => "http_flood",
            Detector::Beacon => "beacon",
            Detector::Payload => "payload",
            Detector::DnsTunnel => "dns_tunnel",
            Detector::C2Session => "c2_session",
        }
    }
}

/// A behaviour detection attached to a flow.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The class it stands for (one of the model's class names).
    pub class: &'static str,
    /// The detector.
    pub detector: Detector,
    /// The evidence in words (counts and the service).
    pub evidence: String,
}

/// Forget a key after this long without a flow (10 min).
pub const STATE_IDLE_NS: i64 = 600 * 1_000_000_000;
/// Distinct ports of one host probed by one source that make a port scan. nmap's default
/// scan probes 1,000; no client opens probes (no payload either way) to 25 ports of one host.
pub const SCAN_PORTS: usize = 25;
/// Distinct hosts probed with ICMP echo by one source that make a sweep.
pub const SWEEP_HOSTS: usize = 16;
/// Distinct hosts probed on one TCP or UDP service by one source that make a sweep (more
/// than for ICMP: browsers and happy-eyeballs clients leave a trail of failed connections).
pub const SWEEP_SERVICE_HOSTS: usize = 32;
/// Short sessions with small payloads both ways from one source to one service that make a
/// brute force (hydra, medusa, ncrack, patator open one per few attempts).
pub const BRUTE_SESSIONS: usize = 12;
/// A session counts for a brute force only below this many forward payload bytes.
pub const BRUTE_MAX_FWD_BYTES: f64 = 16_384.0;
/// Unanswered packets at one destination within [`BURST_NS`] that make a flood.
pub const FLOOD_PACKETS: u64 = 2_000;
/// Unsolicited reflection-service answers at one destination within [`BURST_NS`].
pub const REFLECTION_FLOWS: u64 = 100;
/// Window of the flood and reflection counts (10 s).
pub const BURST_NS: i64 = 10 * 1_000_000_000;
/// Sources at one destination above which a flood is distributed (DDoS).
pub const DDOS_SOURCES: usize = 20;
/// HTTP requests sent and never answered, kept open at least [`SLOW_MIN_NS`], from one
/// source to one server (or from more than [`DDOS_SOURCES`] sources at one server).
pub const SLOW_SESSIONS: usize = 5;
/// How long an unanswered HTTP request must stay open to count as slow (5 s).
pub const SLOW_MIN_NS: i64 = 5 * 1_000_000_000;
/// HTTP sessions from one source to one server within [`HTTP_FLOOD_NS`] that make a flood,
/// when at least a quarter of that pair's requests went unanswered (the server gave way; a
/// busy API client gets its answers).
pub const HTTP_FLOOD_SESSIONS: usize = 80;
/// Window of the HTTP flood count (60 s).
pub const HTTP_FLOOD_NS: i64 = 60 * 1_000_000_000;
/// Connections to one service at a regular interval that make a beacon.
pub const BEACON_CONNECTIONS: usize = 8;
/// Largest coefficient of variation of the gaps between them (0.2: software timers, jitter
/// included; people and pages are irregular).
pub const BEACON_MAX_CV: f64 = 0.2;
/// Smallest mean gap of a beacon (2 s: faster is a client retrying, not a timer).
pub const BEACON_MIN_GAP_NS: f64 = 2e9;

/// Queries for long names (see `features::signal::DNS_LONG_NAME`) from one client to one DNS
/// server that make a tunnel; one lookup of an odd name is not.
pub const TUNNEL_QUERIES: u64 = 50;
/// A C2 session lasts at least this long (60 s) ...
pub const C2_MIN_NS: i64 = 60 * 1_000_000_000;
/// ... with at least this many client messages ...
pub const C2_MIN_MESSAGES: f64 = 10.0;
/// ... of at most this mean size (commands and heartbeats, not transfers).
pub const C2_MAX_MEAN_BYTES: f64 = 400.0;
/// Ports of well-known long-lived services that a C2 session is not (databases, chat,
/// push, remote desktops, proxies, IRC, SIP, VPNs).
pub const C2_ORDINARY_PORTS: [u16; 24] = [
    1080, 1194, 1433, 1521, 1723, 1883, 3128, 3306, 3389, 5060, 5061, 5222, 5223, 5228, 5432, 5900,
    5938, 6379, 6667, 6697, 8080, 8443, 8883, 27017,
];

/// Hosts one source sent SMB exploit requests to that make a worm.
pub const WORM_VICTIMS: usize = 3;

/// Cap on any per-key set of ports or hosts (a whole port range fits).
const SET_CAP: usize = 65_536;
/// Cap on the start times kept per key (the newest kept; counts go on).
const TIMES_CAP: usize = 4096;

fn idx(name: &str) -> usize {
    FEATURES
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("feature {name:?} in the spec"))
}

/// Positions of the features the detectors read.
#[derive(Clone, Copy)]
struct Cols {
    fwd_bytes: usize,
    bwd_bytes: usize,
    head: usize,
    duration: usize,
    fwd_data: usize,
    bwd_packets: usize,
}

impl Cols {
    fn new() -> Self {
        Cols {
            fwd_bytes: idx("Total Length of Fwd Packet"),
            bwd_bytes: idx("Total Length of Bwd Packet"),
            head: idx("Fwd Payload Byte 0"),
            duration: idx("Flow Duration"),
            fwd_data: idx("Fwd Act Data Pkts"),
            bwd_packets: idx("Total Bwd packets"),
        }
    }
}

/// What the detectors read of one flow.
struct Facts {
    fwd_bytes: f64,
    bwd_bytes: f64,
    head: [u8; 4],
    duration_ns: f64,
    fwd_data: f64,
    bwd_packets: f64,
}

impl Facts {
    fn of(f: &FlowRecord, c: Cols) -> Self {
        let mut head = [0u8; 4];
        for (i, h) in head.iter_mut().enumerate() {
            let v = f.features[c.head + i];
            *h = if (0.0..=255.0).contains(&v) {
                v as u8
            } else {
                0
            };
        }
        Facts {
            fwd_bytes: f.features[c.fwd_bytes].max(0.0),
            bwd_bytes: f.features[c.bwd_bytes].max(0.0),
            head,
            duration_ns: f.features[c.duration].max(0.0) * 1e3,
            fwd_data: f.features[c.fwd_data].max(0.0),
            bwd_packets: f.features[c.bwd_packets].max(0.0),
        }
    }

    fn http_request(&self) -> bool {
        matches!(&self.head, b"GET " | b"POST" | b"HEAD" | b"PUT " | b"OPTI")
    }
}

fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.octets()[3] == 255),
        IpAddr::V6(a) => !a.is_multicast(),
    }
}

/// A routable Internet address (not private, loopback, link-local, CGNAT, reserved or
/// multicast).
fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || (o[0] == 100 && o[1] & 0xc0 == 64)
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments()[0];
            !(a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || s & 0xfe00 == 0xfc00
                || s & 0xffc0 == 0xfe80)
        }
    }
}

/// A probe: a flow that carried no payload either way and at most three packets out (a SYN
/// and its retries, an empty datagram, an echo request).
fn probe(f: &FlowRecord, x: &Facts) -> bool {
    x.fwd_bytes == 0.0 && x.bwd_bytes == 0.0 && f.packets_fwd <= 3
}

/// A flow from a well-known service port to an ephemeral one: a server's answer whose start
/// the flow table did not see (a SYN-ACK or RST after the client's odd packet), not a probe of
/// the ephemeral port. Scanners send from ephemeral ports.
fn answer_like(f: &FlowRecord) -> bool {
    (1..1024).contains(&f.src_port) && f.dst_port >= 1024
}

struct Seen<T> {
    last: i64,
    set: HashSet<T, Hasher>,
    fired: bool,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen {
            last: 0,
            set: HashSet::default(),
            fired: false,
        }
    }
}

impl<T: std::hash::Hash + Eq> Seen<T> {
    fn add(&mut self, t: i64, v: T) -> usize {
        self.last = self.last.max(t);
        if self.set.len() < SET_CAP {
            self.set.insert(v);
        }
        self.set.len()
    }
}

#[derive(Default)]
struct Times {
    last: i64,
    /// Start times, each with whether it was flagged (an unanswered HTTP request).
    starts: std::collections::VecDeque<(i64, bool)>,
    /// Starts counted (those dropped by the cap included) for keys without a window.
    count: usize,
    /// Flagged starts among `starts`.
    flagged: usize,
    fired: bool,
}

impl Times {
    /// Add a start; with a `window`, drop those older than it before the newest and count
    /// what is left, else count them all (0: no window). Returns the count.
    fn add(&mut self, t: i64, window: i64) -> usize {
        self.add_flagged(t, window, false)
    }

    /// [`Times::add`] for a start that is `flag`ged; [`Times::flagged`] counts those left.
    fn add_flagged(&mut self, t: i64, window: i64, flag: bool) -> usize {
        self.last = self.last.max(t);
        if self.starts.len() >= TIMES_CAP {
            self.pop();
        }
        self.starts.push_back((t, flag));
        self.flagged += usize::from(flag);
        if window > 0 {
            let newest = self.last;
            while self.starts.front().is_some_and(|s| newest - s.0 > window) {
                self.pop();
            }
            self.starts.len()
        } else {
            self.count += 1;
            self.count
        }
    }

    fn pop(&mut self) {
        if let Some((_, flag)) = self.starts.pop_front() {
            self.flagged -= usize::from(flag);
        }
    }
}

#[derive(Default)]
struct Burst {
    last: i64,
    /// (time, packets, source) of recent unanswered traffic.
    events: std::collections::VecDeque<(i64, u64, IpAddr)>,
    /// Events per source among `events`.
    sources: HashMap<IpAddr, u32, Hasher>,
    packets: u64,
    fired: bool,
}

impl Burst {
    /// Add traffic; returns the packets and the distinct sources within the window.
    fn add(&mut self, t: i64, packets: u64, src: IpAddr) -> (u64, usize) {
        self.last = self.last.max(t);
        self.events.push_back((t, packets, src));
        *self.sources.entry(src).or_default() += 1;
        self.packets += packets;
        let newest = self.last;
        while let Some(&(s, p, a)) = self.events.front() {
            if newest - s <= BURST_NS && self.events.len() <= 1 << 16 {
                break;
            }
            self.events.pop_front();
            self.packets -= p;
            if let Some(n) = self.sources.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    self.sources.remove(&a);
                }
            }
        }
        (self.packets, self.sources.len())
    }
}

type Pair = (IpAddr, IpAddr);
type Svc = (IpAddr, IpAddr, u8, u16);

/// The detectors' state over a flow stream; see the module documentation.
pub struct BehaviourTracker {
    cols: Cols,
    scan: HashMap<Pair, Seen<(u8, u16)>, Hasher>,
    sweep: HashMap<(IpAddr, u8, u16), Seen<IpAddr>, Hasher>,
    brute: HashMap<Svc, Times, Hasher>,
    flood: HashMap<IpAddr, Burst, Hasher>,
    reflect: HashMap<IpAddr, Burst, Hasher>,
    slow: HashMap<Svc, Times, Hasher>,
    slow_dst: HashMap<(IpAddr, u16), Seen<IpAddr>, Hasher>,
    http: HashMap<Svc, Times, Hasher>,
    beacon: HashMap<Svc, Times, Hasher>,
    tunnel: HashMap<Svc, Burst, Hasher>,
    worm: HashMap<IpAddr, Seen<IpAddr>, Hasher>,
    now: i64,
    seen_flows: u64,
}

impl Default for BehaviourTracker {
    fn default() -> Self {
        Self::new()
    }
}

fn finding(class: &'static str, detector: Detector, evidence: String) -> Option<Finding> {
    Some(Finding {
        class,
        detector,
        evidence,
    })
}

/// Gaps between sorted start times: (mean, coefficient of variation).
fn regularity(mut s: Vec<i64>) -> (f64, f64) {
    s.sort_unstable();
    let gaps: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    if gaps.is_empty() {
        return (0.0, f64::INFINITY);
    }
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    (
        mean,
        if mean > 0.0 {
            var.sqrt() / mean
        } else {
            f64::INFINITY
        },
    )
}

/// The authentication service a session talks to, from its first client bytes, else its port.
fn auth_service(head: &[u8; 4], port: u16) -> Option<&'static str> {
    match head {
        b"SSH-" => Some("SSH Patator"),
        b"USER" | b"user" => Some("FTP Patator"),
        // Not POST: API clients post small requests all day.
        _ => match port {
            22 => Some("SSH Patator"),
            21 => Some("FTP Patator"),
            _ => None,
        },
    }
}

/// What a flow's own sampled request bytes show ([`crate::features::signal`]), if anything.
fn payload_finding(f: &FlowRecord, x: &Facts) -> Option<Finding> {
    use crate::features::signal as sig;
    let s = f.signals;
    // An encrypted heartbeat cannot be read, but a leak answers a small request with far
    // more than it sent.
    let leak =
        s & sig::HEARTBEAT != 0 && x.bwd_bytes >= 16_384.0 && x.bwd_bytes > 4.0 * x.fwd_bytes;
    let (class, what) = if s & sig::HEARTBEAT_OVERREAD != 0 || leak {
        (
            "Heartbleed",
            "TLS heartbeat requests answered with far more than they carried",
        )
    } else if s & sig::SMB_NT_TRANS_LARGE != 0 {
        (
            "Exploits",
            "an SMB1 NT Trans request announcing 64 KiB or more (EternalBlue)",
        )
    } else if s & sig::SMB_DOUBLEPULSAR != 0 {
        (
            "Backdoor",
            "an SMB1 Trans2 SESSION_SETUP request (DoublePulsar)",
        )
    } else if s & sig::JNDI != 0 {
        (
            "Exploits",
            "a JNDI lookup string in the request (Log4Shell)",
        )
    } else if s & sig::SHELLSHOCK != 0 && x.http_request() {
        (
            "Exploits",
            "a bash function definition in an HTTP request (Shellshock)",
        )
    } else if !x.http_request() {
        return None;
    } else if s & sig::SQLI != 0 {
        (
            "Web Attack - SQL Injection",
            "SQL injection in an HTTP request",
        )
    } else if s & sig::XSS != 0 {
        ("Web Attack - XSS", "script injection in an HTTP request")
    } else if s & (sig::TRAVERSAL | sig::SHELL) != 0 {
        (
            "Exploits",
            "path traversal or a shell path in an HTTP request",
        )
    } else {
        return None;
    };
    finding(
        class,
        Detector::Payload,
        format!(
            "{what}: {}:{} -> {}:{}",
            f.src_ip, f.src_port, f.dst_ip, f.dst_port
        ),
    )
}

impl BehaviourTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        BehaviourTracker {
            cols: Cols::new(),
            scan: HashMap::default(),
            sweep: HashMap::default(),
            brute: HashMap::default(),
            flood: HashMap::default(),
            reflect: HashMap::default(),
            slow: HashMap::default(),
            slow_dst: HashMap::default(),
            http: HashMap::default(),
            beacon: HashMap::default(),
            tunnel: HashMap::default(),
            worm: HashMap::default(),
            now: 0,
            seen_flows: 0,
        }
    }

    /// Feed the next flows (in the flow stage's output order); one verdict per flow.
    pub fn observe(&mut self, flows: &[FlowRecord]) -> Vec<Option<Finding>> {
        let out = flows.iter().map(|f| self.one(f)).collect();
        self.seen_flows += flows.len() as u64;
        if self.seen_flows >= 65_536 {
            self.seen_flows = 0;
            self.expire();
        }
        out
    }

    /// [`Self::observe`], writing each finding into its flow's `behaviour`.
    pub fn mark(&mut self, flows: &mut [FlowRecord]) {
        let found = self.observe(flows);
        for (f, v) in flows.iter_mut().zip(found) {
            f.behaviour = v;
        }
    }

    /// Drop keys idle for [`STATE_IDLE_NS`].
    fn expire(&mut self) {
        let h = self.now - STATE_IDLE_NS;
        self.scan.retain(|_, v| v.last > h);
        self.sweep.retain(|_, v| v.last > h);
        self.brute.retain(|_, v| v.last > h);
        self.flood.retain(|_, v| v.last > h);
        self.reflect.retain(|_, v| v.last > h);
        self.slow.retain(|_, v| v.last > h);
        self.slow_dst.retain(|_, v| v.last > h);
        self.http.retain(|_, v| v.last > h);
        self.beacon.retain(|_, v| v.last > h);
        self.tunnel.retain(|_, v| v.last > h);
        self.worm.retain(|_, v| v.last > h);
    }

    fn one(&mut self, f: &FlowRecord) -> Option<Finding> {
        let x = Facts::of(f, self.cols);
        let t = f.first_ts_ns;
        self.now = self.now.max(f.last_ts_ns);
        let tcp_udp = f.proto == 6 || f.proto == 17;
        let icmp = f.proto == 1 || f.proto == 58;
        let mut found: Option<Finding> = None;
        let mut take = |c: Option<Finding>| {
            if found.is_none() {
                found = c;
            }
        };

        // A worm: the same SMB exploit from one host against several.
        let smb =
            crate::features::signal::SMB_NT_TRANS_LARGE | crate::features::signal::SMB_DOUBLEPULSAR;
        if f.signals & smb != 0 {
            let s = self.worm.entry(f.src_ip).or_default();
            let n = s.add(t, f.dst_ip);
            if n >= WORM_VICTIMS || s.fired {
                s.fired = true;
                take(finding(
                    "Worms",
                    Detector::Payload,
                    format!(
                        "{} sent SMB exploit requests (EternalBlue / DoublePulsar) to {n} hosts",
                        f.src_ip
                    ),
                ));
            }
        }
        take(payload_finding(f, &x));
        // Port scan and sweep: probes.
        if probe(f, &x) && unicast(f.dst_ip) {
            if tcp_udp && !answer_like(f) {
                let s = self.scan.entry((f.src_ip, f.dst_ip)).or_default();
                let n = s.add(t, (f.proto, f.dst_port));
                if n >= SCAN_PORTS || s.fired {
                    s.fired = true;
                    take(finding(
                        "Port Scan",
                        Detector::PortScan,
                        format!("{} probed {n} ports of {}", f.src_ip, f.dst_ip),
                    ));
                }
            }
            let echo = icmp && (f.src_port == 8 || f.src_port == 128);
            if tcp_udp || echo {
                let port = if echo { 0 } else { f.dst_port };
                let s = self.sweep.entry((f.src_ip, f.proto, port)).or_default();
                let n = s.add(t, f.dst_ip);
                let need = if echo {
                    SWEEP_HOSTS
                } else {
                    SWEEP_SERVICE_HOSTS
                };
                if n >= need || s.fired {
                    s.fired = true;
                    let what = if echo {
                        "ICMP echo".to_string()
                    } else {
                        format!("{}/{}", crate::proto_name(f.proto), f.dst_port)
                    };
                    take(finding(
                        "Reconnaissance",
                        Detector::Sweep,
                        format!("{} probed {what} on {n} hosts", f.src_ip),
                    ));
                }
            }
        }
        // Reflection: answers of an amplifying service nobody here asked for.
        if f.proto == 17 && matches!(f.src_port, 53 | 123 | 19 | 161 | 389 | 1900 | 11211) {
            let b = self.reflect.entry(f.dst_ip).or_default();
            let (n, srcs) = b.add(t, 1, f.src_ip);
            if (n >= REFLECTION_FLOWS && srcs > DDOS_SOURCES) || b.fired {
                b.fired = true;
                take(finding(
                    "DDoS",
                    Detector::Reflection,
                    format!(
                        "{n} unsolicited answers from port {} at {} within 10 s, more than {DDOS_SOURCES} reflectors",
                        f.src_port, f.dst_ip
                    ),
                ));
            }
        }
        // Flood: packets at a destination that it does not answer.
        if unicast(f.dst_ip) && f.packets_bwd * 20 <= f.packets_fwd {
            let b = self.flood.entry(f.dst_ip).or_default();
            let (packets, srcs) = b.add(t, f.packets_fwd, f.src_ip);
            if packets >= FLOOD_PACKETS || b.fired {
                b.fired = true;
                let (class, who) = if srcs > DDOS_SOURCES {
                    ("DDoS", format!("more than {DDOS_SOURCES} sources"))
                } else {
                    ("DoS", format!("{srcs} source(s)"))
                };
                take(finding(
                    class,
                    Detector::Flood,
                    format!(
                        "{packets} unanswered packets at {} within 10 s from {who}",
                        f.dst_ip
                    ),
                ));
            }
        }
        let svc = (f.src_ip, f.dst_ip, f.proto, f.dst_port);
        if f.proto == 6 && x.fwd_bytes > 0.0 {
            // HTTP flood: a burst of requests the server no longer keeps up with.
            if x.http_request() {
                let s = self.http.entry(svc).or_default();
                let n = s.add_flagged(t, HTTP_FLOOD_NS, x.bwd_bytes == 0.0);
                let unanswered = s.flagged;
                if (n >= HTTP_FLOOD_SESSIONS && unanswered * 4 >= n) || s.fired {
                    s.fired = true;
                    take(finding(
                        "DoS Hulk",
                        Detector::HttpFlood,
                        format!(
                            "{n} HTTP sessions from {} to {}:{} within 60 s, {unanswered} unanswered",
                            f.src_ip, f.dst_ip, f.dst_port
                        ),
                    ));
                }
            }
            // Slow DoS: an HTTP request sent, nothing answered, held open.
            if x.http_request() && x.bwd_bytes == 0.0 && f.last_ts_ns - t >= SLOW_MIN_NS {
                let s = self.slow.entry(svc).or_default();
                let n = s.add(t, 0);
                let d = self.slow_dst.entry((f.dst_ip, f.dst_port)).or_default();
                let m = d.add(t, f.src_ip);
                let per_dst = d.fired || m > DDOS_SOURCES;
                if n >= SLOW_SESSIONS || s.fired || per_dst {
                    s.fired = true;
                    let class = if m > DDOS_SOURCES {
                        "DDoS"
                    } else {
                        "DoS Slowloris"
                    };
                    d.fired |= m > DDOS_SOURCES;
                    take(finding(
                        class,
                        Detector::SlowDos,
                        format!(
                            "{n} HTTP requests from {} to {}:{} held open unanswered ({m} sources at that server)",
                            f.src_ip, f.dst_ip, f.dst_port
                        ),
                    ));
                }
            }
            // Brute force: many small sessions that both sides talked in.
            if x.bwd_bytes > 0.0 && x.fwd_bytes < BRUTE_MAX_FWD_BYTES {
                if let Some(class) = auth_service(&x.head, f.dst_port) {
                    let s = self.brute.entry(svc).or_default();
                    let n = s.add(t, 0);
                    if n >= BRUTE_SESSIONS || s.fired {
                        s.fired = true;
                        take(finding(
                            class,
                            Detector::BruteForce,
                            format!(
                                "{n} short login sessions from {} to {}:{}",
                                f.src_ip, f.dst_ip, f.dst_port
                            ),
                        ));
                    }
                }
            }
        }
        // DNS tunnel: many queries for long encoded names to one server.
        if f.dst_port == 53 && f.signals & crate::features::signal::DNS_LONG_NAME != 0 {
            // Counted over the key's life (forgotten after 10 minutes idle), not a burst.
            let b = self.tunnel.entry(svc).or_default();
            b.last = b.last.max(t);
            b.packets += f.packets_fwd;
            let n = b.packets;
            if n >= TUNNEL_QUERIES || b.fired {
                b.fired = true;
                take(finding(
                    "Infiltration",
                    Detector::DnsTunnel,
                    format!(
                        "{n} queries for long encoded names from {} to DNS server {}",
                        f.src_ip, f.dst_ip
                    ),
                ));
            }
        }
        // C2 session: a long conversation of small messages to an unusual service port.
        if f.proto == 6
            && f.last_ts_ns - t >= C2_MIN_NS
            && x.fwd_data >= C2_MIN_MESSAGES
            && x.bwd_packets >= C2_MIN_MESSAGES
            && x.fwd_bytes / x.fwd_data.max(1.0) <= C2_MAX_MEAN_BYTES
            && f.dst_port >= 1024
            && f.src_port > f.dst_port
            && !C2_ORDINARY_PORTS.contains(&f.dst_port)
            && &x.head != b"SSH-"
            && unicast(f.dst_ip)
        {
            take(finding(
                "Backdoor",
                Detector::C2Session,
                format!(
                    "{} held a {:.0} s session of {} small messages with {}:{}",
                    f.src_ip,
                    x.duration_ns / 1e9,
                    x.fwd_data,
                    f.dst_ip,
                    f.dst_port
                ),
            ));
        }
        // Beacon: connections to one service on the Internet at a regular interval (inside a
        // network, regular connections are health checks and scrapes).
        if tcp_udp && x.fwd_bytes > 0.0 && public(f.dst_ip) && f.dst_port != 53 {
            let s = self.beacon.entry(svc).or_default();
            let n = s.add(t, 0);
            if n >= BEACON_CONNECTIONS || s.fired {
                let recent: Vec<i64> = s.starts.iter().rev().take(64).map(|s| s.0).collect();
                let (gap, cv) = regularity(recent);
                if s.fired || (cv <= BEACON_MAX_CV && gap >= BEACON_MIN_GAP_NS) {
                    s.fired = true;
                    take(finding(
                        "Bot",
                        Detector::Beacon,
                        format!(
                            "{n} connections from {} to {}:{} every {:.1} s (variation {:.0}%)",
                            f.src_ip,
                            f.dst_ip,
                            f.dst_port,
                            gap / 1e9,
                            cv * 100.0
                        ),
                    ));
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests;
