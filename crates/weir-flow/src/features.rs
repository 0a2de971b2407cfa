//! The versioned flow feature vector: its one spec ([`FEATURES`]) and its accumulator
//! ([`FlowStats`]).
//!
//! The first block follows the CICFlowMeter family with the column names of the corrected
//! CIC-IDS2017 release (Engelen et al., "Troubleshooting an intrusion detection dataset: the
//! CICIDS2017 case study", 2021, and their fixed CICFlowMeter), so that their labelled rows can
//! train the same model. Where CICFlowMeter is known to be wrong weir computes the correct value
//! and the spec says so (`differs_from_cic`). The second block holds payload indicators that
//! web attacks and exploits need.
//!
//! Units: times in microseconds, sizes in bytes of *transport payload* (CIC semantics: a
//! packet's "length" is its TCP/UDP/ICMP payload length), rates per second.

use crate::Direction;

/// Version of the feature vector. Bump it whenever a feature's name, order, unit or
/// computation changes; models carry the version they were trained on.
pub const FEATURE_VERSION: &str = "weir-features/2";

/// Activity timeout (µs) separating active and idle periods (CICFlowMeter's 5 s).
pub const ACTIVITY_TIMEOUT_US: f64 = 5_000_000.0;
/// Gap (µs) that starts a new subflow and breaks a bulk (CICFlowMeter's 1 s).
pub const SUBFLOW_GAP_US: f64 = 1_000_000.0;
/// Consecutive same-direction data packets that make a bulk.
pub const BULK_MIN_PACKETS: u32 = 4;
/// How many payload-carrying packets per direction feed the payload indicators.
pub const PAYLOAD_SAMPLE_PACKETS: u8 = 3;
/// How many bytes of each sampled payload the indicators look at.
pub const PAYLOAD_SAMPLE_BYTES: usize = 512;
/// How many leading bytes of the first forward payload are features.
pub const HEAD_BYTES: usize = 8;

/// One feature in the spec.
#[derive(Clone, Copy, Debug)]
pub struct FeatureSpec {
    /// Column name (CIC-IDS2017 improved naming for the CIC block).
    pub name: &'static str,
    /// Unit of the value.
    pub unit: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Where weir deliberately differs from CICFlowMeter's output (a known CIC bug), else empty.
    pub differs_from_cic: &'static str,
}

const fn f(name: &'static str, unit: &'static str, description: &'static str) -> FeatureSpec {
    FeatureSpec {
        name,
        unit,
        description,
        differs_from_cic: "",
    }
}

const fn fx(
    name: &'static str,
    unit: &'static str,
    description: &'static str,
    differs: &'static str,
) -> FeatureSpec {
    FeatureSpec {
        name,
        unit,
        description,
        differs_from_cic: differs,
    }
}

/// The snake_case column name of a feature in weir's tables (Parquet, CSV, JSON): its CIC
/// name lower-cased, `/` read as `per` (`Flow Bytes/s` -> `flow_bytes_per_s`), every other
/// run of non-alphanumerics one `_`. The CIC name stays in [`FeatureSpec::name`] (and in
/// the Parquet column's metadata). `Protocol` is the flow's `proto` column (the same number).
pub fn column_name(cic: &str) -> String {
    if cic == "Protocol" {
        return "proto".into();
    }
    let words = cic.replace("Down/Up", "Down Up").replace('/', " per ");
    let mut out = String::with_capacity(words.len());
    for c in words.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// The column names of [`FEATURES`], in vector order (see [`column_name`]).
pub fn feature_columns() -> &'static [String] {
    static COLUMNS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| FEATURES.iter().map(|f| column_name(f.name)).collect())
}

/// Number of features in the vector.
pub const N_FEATURES: usize = 101;

/// The spec: names, units and meanings, in vector order.
pub static FEATURES: [FeatureSpec; N_FEATURES] = [
    f("Protocol", "IANA number", "IP protocol of the flow (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)"),
    f("Flow Duration", "µs", "time from the first to the last packet"),
    f("Total Fwd Packet", "packets", "packets from the initiator"),
    f("Total Bwd packets", "packets", "packets from the responder"),
    f("Total Length of Fwd Packet", "bytes", "sum of forward payload lengths"),
    f("Total Length of Bwd Packet", "bytes", "sum of backward payload lengths"),
    f("Fwd Packet Length Max", "bytes", "largest forward payload"),
    f("Fwd Packet Length Min", "bytes", "smallest forward payload (0 when no forward packet)"),
    f("Fwd Packet Length Mean", "bytes", "mean forward payload"),
    f("Fwd Packet Length Std", "bytes", "sample standard deviation of forward payloads"),
    f("Bwd Packet Length Max", "bytes", "largest backward payload"),
    f("Bwd Packet Length Min", "bytes", "smallest backward payload (0 when no backward packet)"),
    f("Bwd Packet Length Mean", "bytes", "mean backward payload"),
    f("Bwd Packet Length Std", "bytes", "sample standard deviation of backward payloads"),
    fx("Flow Bytes/s", "bytes/s", "payload bytes per second of flow duration", "0 for a zero-length flow (CICFlowMeter writes Infinity/NaN)"),
    fx("Flow Packets/s", "packets/s", "packets per second of flow duration", "0 for a zero-length flow (CICFlowMeter writes Infinity)"),
    f("Flow IAT Mean", "µs", "mean gap between consecutive packets of the flow"),
    f("Flow IAT Std", "µs", "sample standard deviation of those gaps"),
    f("Flow IAT Max", "µs", "largest gap"),
    f("Flow IAT Min", "µs", "smallest gap"),
    f("Fwd IAT Total", "µs", "sum of gaps between forward packets"),
    f("Fwd IAT Mean", "µs", "mean gap between forward packets"),
    f("Fwd IAT Std", "µs", "sample standard deviation of forward gaps"),
    f("Fwd IAT Max", "µs", "largest forward gap"),
    f("Fwd IAT Min", "µs", "smallest forward gap"),
    f("Bwd IAT Total", "µs", "sum of gaps between backward packets"),
    f("Bwd IAT Mean", "µs", "mean gap between backward packets"),
    f("Bwd IAT Std", "µs", "sample standard deviation of backward gaps"),
    f("Bwd IAT Max", "µs", "largest backward gap"),
    f("Bwd IAT Min", "µs", "smallest backward gap"),
    fx("Fwd PSH Flags", "packets", "forward packets with PSH", "counted per packet in each direction (CICFlowMeter 3 counted only some)"),
    f("Bwd PSH Flags", "packets", "backward packets with PSH"),
    f("Fwd URG Flags", "packets", "forward packets with URG"),
    f("Bwd URG Flags", "packets", "backward packets with URG"),
    f("Fwd RST Flags", "packets", "forward packets with RST"),
    f("Bwd RST Flags", "packets", "backward packets with RST"),
    f("Fwd Header Length", "bytes", "sum of forward transport header lengths (TCP incl. options, UDP 8)"),
    f("Bwd Header Length", "bytes", "sum of backward transport header lengths"),
    f("Fwd Packets/s", "packets/s", "forward packets per second of flow duration (0 for a zero-length flow)"),
    f("Bwd Packets/s", "packets/s", "backward packets per second of flow duration"),
    f("Packet Length Min", "bytes", "smallest payload, both directions"),
    f("Packet Length Max", "bytes", "largest payload, both directions"),
    f("Packet Length Mean", "bytes", "mean payload, both directions"),
    f("Packet Length Std", "bytes", "sample standard deviation of payloads"),
    f("Packet Length Variance", "bytes²", "sample variance of payloads"),
    f("FIN Flag Count", "packets", "packets with FIN"),
    f("SYN Flag Count", "packets", "packets with SYN"),
    f("RST Flag Count", "packets", "packets with RST"),
    f("PSH Flag Count", "packets", "packets with PSH"),
    f("ACK Flag Count", "packets", "packets with ACK"),
    f("URG Flag Count", "packets", "packets with URG"),
    f("CWR Flag Count", "packets", "packets with CWR"),
    f("ECE Flag Count", "packets", "packets with ECE"),
    fx("Down/Up Ratio", "ratio", "backward packets / forward packets", "a real ratio (CICFlowMeter truncated it to an integer)"),
    fx("Average Packet Size", "bytes", "total payload / total packets", "divides by the packet count (CICFlowMeter divided by count+1)"),
    f("Fwd Segment Size Avg", "bytes", "mean forward payload"),
    f("Bwd Segment Size Avg", "bytes", "mean backward payload"),
    fx("Fwd Bytes/Bulk Avg", "bytes", "mean payload bytes per forward bulk (>= 4 data packets in a row, gaps < 1 s)", "bulk counters kept per direction and reset by the other direction's data"),
    f("Fwd Packet/Bulk Avg", "packets", "mean packets per forward bulk"),
    fx("Fwd Bulk Rate Avg", "bytes/s", "forward bulk bytes / forward bulk duration", "seconds as the unit of the duration (CICFlowMeter mixed µs and s)"),
    f("Bwd Bytes/Bulk Avg", "bytes", "mean payload bytes per backward bulk"),
    f("Bwd Packet/Bulk Avg", "packets", "mean packets per backward bulk"),
    f("Bwd Bulk Rate Avg", "bytes/s", "backward bulk bytes / backward bulk duration"),
    fx("Subflow Fwd Packets", "packets", "forward packets per subflow (a gap > 1 s starts a subflow)", "divides by the subflow count (CICFlowMeter's counter started at -1 and is often 0 in its output)"),
    fx("Subflow Fwd Bytes", "bytes", "forward payload bytes per subflow", "per subflow, not per packet"),
    f("Subflow Bwd Packets", "packets", "backward packets per subflow"),
    f("Subflow Bwd Bytes", "bytes", "backward payload bytes per subflow"),
    f("FWD Init Win Bytes", "bytes", "TCP window of the first forward packet (0 if not TCP)"),
    f("Bwd Init Win Bytes", "bytes", "TCP window of the first backward packet (0 if none)"),
    f("Fwd Act Data Pkts", "packets", "forward packets with at least one byte of payload"),
    f("Fwd Seg Size Min", "bytes", "smallest forward transport header length"),
    f("Active Mean", "µs", "mean active period (activity separated by > 5 s of silence)"),
    f("Active Std", "µs", "sample standard deviation of active periods"),
    f("Active Max", "µs", "longest active period"),
    f("Active Min", "µs", "shortest active period"),
    f("Idle Mean", "µs", "mean idle period (> 5 s of silence)"),
    f("Idle Std", "µs", "sample standard deviation of idle periods"),
    f("Idle Max", "µs", "longest idle period"),
    f("Idle Min", "µs", "shortest idle period"),
    f("ICMP Code", "code", "ICMP/ICMPv6 code of the first packet, -1 if not ICMP"),
    f("ICMP Type", "type", "ICMP/ICMPv6 type of the first packet, -1 if not ICMP"),
    f("Total TCP Flow Time", "µs", "flow duration for TCP flows, 0 otherwise"),
    // ---- weir payload indicators ----
    f("Fwd Payload Entropy", "bits/byte", "mean Shannon entropy of the first 512 bytes of the first 3 forward payloads (0 if none)"),
    f("Bwd Payload Entropy", "bits/byte", "the same for backward payloads"),
    f("Fwd Payload Printable Ratio", "ratio", "share of printable ASCII (0x20-0x7e, tab, CR, LF) in the sampled forward payload bytes"),
    f("Bwd Payload Printable Ratio", "ratio", "the same for backward payloads"),
    f("Fwd Payload Suspicious Tokens", "count", "web-attack/exploit tokens in the sampled forward payloads (SQL keywords, script tags, traversal, shell, NOP sleds; see SUSPICIOUS_TOKENS)"),
    f("Fwd Payload Byte 0", "byte value", "first byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 1", "byte value", "second byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 2", "byte value", "third byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 3", "byte value", "fourth byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 4", "byte value", "fifth byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 5", "byte value", "sixth byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 6", "byte value", "seventh byte of the first forward payload, -1 if none"),
    f("Fwd Payload Byte 7", "byte value", "eighth byte of the first forward payload, -1 if none"),
    // ---- weir context: what the flow's hosts did in the 30 s up to its first packet ----
    f("Src Flows 30s", "flows", "flows the initiator started in the 30 s up to this flow's start, this one included (see crate::context; NaN when unknown)"),
    f("Src Dst Hosts 30s", "hosts", "distinct responder addresses among those flows"),
    f("Src Dst Ports 30s", "ports", "distinct (protocol, responder port) pairs among those flows (ICMP counts as one port)"),
    f("Src Same Service 30s", "flows", "those of the flows that went to this flow's responder address, protocol and port"),
    f("Dst Flows 30s", "flows", "flows started towards this flow's responder address in the same 30 s, this one included"),
    f("Dst Src Hosts 30s", "hosts", "distinct initiator addresses among those flows"),
];

/// Index of the first context feature; the context block runs to the end of the vector and
/// is filled by [`crate::context::ContextTracker`] (NaN until then).
pub const CONTEXT_FIRST: usize = N_FEATURES - crate::context::N_CONTEXT;

/// Tokens counted by "Fwd Payload Suspicious Tokens" (matched case-insensitively).
pub const SUSPICIOUS_TOKENS: [&[u8]; 16] = [
    b"union select",
    b"union+select",
    b"union%20select",
    b"' or ",
    b"'%20or%20",
    b"or 1=1",
    b"<script",
    b"%3cscript",
    b"javascript:",
    b"onerror=",
    b"../",
    b"..%2f",
    b"/etc/passwd",
    b"cmd.exe",
    b"/bin/sh",
    b"\x90\x90\x90\x90\x90\x90\x90\x90",
];

/// Running count/sum/sum-of-squares/min/max of one quantity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    n: u64,
    sum: f64,
    sumsq: f64,
    min: f64,
    max: f64,
}

impl Stat {
    #[inline]
    fn add(&mut self, x: f64) {
        if self.n == 0 {
            self.min = x;
            self.max = x;
        } else {
            if x < self.min {
                self.min = x;
            }
            if x > self.max {
                self.max = x;
            }
        }
        self.n += 1;
        self.sum += x;
        self.sumsq += x * x;
    }
    fn merge(a: &Stat, b: &Stat) -> Stat {
        match (a.n, b.n) {
            (0, _) => *b,
            (_, 0) => *a,
            _ => Stat {
                n: a.n + b.n,
                sum: a.sum + b.sum,
                sumsq: a.sumsq + b.sumsq,
                min: a.min.min(b.min),
                max: a.max.max(b.max),
            },
        }
    }
    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }
    /// Sample variance (n - 1), 0 below two values.
    fn var(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        ((self.sumsq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }
    fn std(&self) -> f64 {
        self.var().sqrt()
    }
    fn min(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.min
        }
    }
    fn max(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.max
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bulk {
    // finished bulks
    count: u32,
    packets: u64,
    bytes: u64,
    duration_us: f64,
    // candidate bulk
    start: f64,
    last: f64,
    helper_packets: u32,
    helper_bytes: u64,
    active: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct DirStats {
    len: Stat,
    iat: Stat,
    last_ts: f64,
    header_bytes: u64,
    psh: u32,
    urg: u32,
    rst: u32,
    init_win: u16,
    data_pkts: u32,
    min_hdr: u16,
    bulk: Bulk,
    payload_pkts_sampled: u8,
    entropy_sum: f32,
    printable: u32,
    sampled_bytes: u32,
}

/// Per-flow accumulator of everything the feature vector needs. Constant size (no heap).
#[derive(Clone, Debug)]
pub struct FlowStats {
    first_us: f64,
    last_us: f64,
    fwd: DirStats,
    bwd: DirStats,
    flow_iat: Stat,
    flags: [u32; 8],
    active: Stat,
    idle: Stat,
    start_active: f64,
    end_active: f64,
    subflows: u32,
    icmp: Option<(u8, u8)>,
    proto: u8,
    tokens: u32,
    signals: u32,
    head: [u8; HEAD_BYTES],
    head_len: u8,
}

/// What the accumulator needs to know about one packet.
#[derive(Clone, Copy, Debug)]
pub struct PacketFeatures<'a> {
    /// Timestamp, µs (fractional).
    pub ts_us: f64,
    /// Direction relative to the initiator.
    pub dir: Direction,
    /// Transport payload length (wire).
    pub payload_len: u32,
    /// Transport header length.
    pub header_len: u16,
    /// TCP flags.
    pub flags: u8,
    /// TCP window.
    pub window: u16,
    /// Captured payload bytes (may be shorter than `payload_len`).
    pub payload: &'a [u8],
    /// ICMP type and code when ICMP.
    pub icmp: Option<(u8, u8)>,
}

impl FlowStats {
    /// Start the accumulator with the flow's first packet.
    pub fn new(proto: u8, p: &PacketFeatures<'_>) -> Self {
        let mut s = FlowStats {
            first_us: p.ts_us,
            last_us: p.ts_us,
            fwd: DirStats::default(),
            bwd: DirStats::default(),
            flow_iat: Stat::default(),
            flags: [0; 8],
            active: Stat::default(),
            idle: Stat::default(),
            start_active: p.ts_us,
            end_active: p.ts_us,
            subflows: 1,
            icmp: p.icmp,
            proto,
            tokens: 0,
            signals: 0,
            head: [0; HEAD_BYTES],
            head_len: 0,
        };
        s.add_inner(p, true);
        s
    }

    /// Add one packet.
    #[inline]
    pub fn add(&mut self, p: &PacketFeatures<'_>) {
        self.add_inner(p, false);
    }

    fn add_inner(&mut self, p: &PacketFeatures<'_>, first: bool) {
        let ts = p.ts_us.max(self.last_us); // time never runs backwards inside a flow
        if !first {
            let gap = ts - self.last_us;
            self.flow_iat.add(gap);
            if gap > SUBFLOW_GAP_US {
                self.subflows += 1;
            }
            // active/idle periods (CICFlowMeter updateActiveIdleTime)
            if ts - self.end_active > ACTIVITY_TIMEOUT_US {
                if self.end_active - self.start_active > 0.0 {
                    self.active.add(self.end_active - self.start_active);
                }
                self.idle.add(ts - self.end_active);
                self.start_active = ts;
            }
            self.end_active = ts;
            self.last_us = ts;
        }
        for (i, bit) in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x80, 0x40]
            .iter()
            .enumerate()
        {
            if p.flags & bit != 0 {
                self.flags[i] += 1;
            }
        }
        let len = f64::from(p.payload_len);
        let fwd = p.dir == Direction::Forward;
        let (this, other) = if fwd {
            (&mut self.fwd, &mut self.bwd)
        } else {
            (&mut self.bwd, &mut self.fwd)
        };
        let is_first_in_dir = this.len.n == 0;
        if is_first_in_dir {
            this.init_win = p.window;
            this.min_hdr = p.header_len;
        } else {
            this.iat.add(ts - this.last_ts);
            this.min_hdr = this.min_hdr.min(p.header_len);
        }
        this.last_ts = ts;
        this.len.add(len);
        this.header_bytes += u64::from(p.header_len);
        if p.flags & crate::FLAG_PSH != 0 {
            this.psh += 1;
        }
        if p.flags & crate::FLAG_URG != 0 {
            this.urg += 1;
        }
        if p.flags & crate::FLAG_RST != 0 {
            this.rst += 1;
        }
        if p.payload_len > 0 {
            this.data_pkts += 1;
            if fwd && p.payload.len() >= 40 && p.payload[4..8] == *b"\xffSMB" {
                // SMB1 requests are read whole, not sampled: the exploits come late.
                self.signals |= smb_signals(p.payload);
            }
            // A data packet in this direction ends any candidate bulk in the other direction.
            other.bulk.active = false;
            update_bulk(&mut this.bulk, ts, u64::from(p.payload_len));
            if this.payload_pkts_sampled < PAYLOAD_SAMPLE_PACKETS && !p.payload.is_empty() {
                this.payload_pkts_sampled += 1;
                let sample = &p.payload[..p.payload.len().min(PAYLOAD_SAMPLE_BYTES)];
                this.entropy_sum += entropy(sample);
                this.printable += sample
                    .iter()
                    .filter(|&&b| {
                        (0x20..0x7f).contains(&b) || b == b'\t' || b == b'\r' || b == b'\n'
                    })
                    .count() as u32;
                this.sampled_bytes += sample.len() as u32;
                if fwd {
                    let (n, mask) = scan_tokens(sample);
                    self.tokens += n;
                    self.signals |= u32::from(mask) | extra_signals(sample);
                    if sample.contains(&b'%') {
                        // Injections arrive URL-encoded too: the token set seen, decoded
                        // (the feature's count stays over the raw bytes).
                        let decoded = percent_decode(sample);
                        self.signals |=
                            u32::from(scan_tokens(&decoded).1) | extra_signals(&decoded);
                    }
                    if self.head_len == 0 {
                        let n = sample.len().min(HEAD_BYTES);
                        self.head[..n].copy_from_slice(&sample[..n]);
                        self.head_len = n as u8;
                    }
                }
            }
        }
    }

    /// The feature vector, in [`FEATURES`] order.
    /// What the sampled forward payloads showed ([`signal`] bits); not a model feature.
    pub fn signals(&self) -> u32 {
        self.signals
    }

    /// The feature vector.
    pub fn vector(&self) -> [f64; N_FEATURES] {
        let dur = self.last_us - self.first_us;
        let dur_s = dur / 1e6;
        let per_s = |x: f64| if dur_s > 0.0 { x / dur_s } else { 0.0 };
        let (fw, bw) = (&self.fwd, &self.bwd);
        let all = Stat::merge(&fw.len, &bw.len);
        let n_all = (fw.len.n + bw.len.n) as f64;
        let bulk = |b: &Bulk| -> [f64; 3] {
            if b.count == 0 {
                return [0.0; 3];
            }
            let rate = if b.duration_us > 0.0 {
                b.bytes as f64 / (b.duration_us / 1e6)
            } else {
                0.0
            };
            [
                b.bytes as f64 / f64::from(b.count),
                b.packets as f64 / f64::from(b.count),
                rate,
            ]
        };
        let (fb, bb) = (bulk(&fw.bulk), bulk(&bw.bulk));
        let mut active = self.active;
        if self.end_active - self.start_active > 0.0 {
            active.add(self.end_active - self.start_active);
        }
        let sf = f64::from(self.subflows.max(1));
        let ent = |d: &DirStats| {
            if d.payload_pkts_sampled == 0 {
                0.0
            } else {
                f64::from(d.entropy_sum) / f64::from(d.payload_pkts_sampled)
            }
        };
        let printable = |d: &DirStats| {
            if d.sampled_bytes == 0 {
                0.0
            } else {
                f64::from(d.printable) / f64::from(d.sampled_bytes)
            }
        };
        let head = |i: usize| {
            if i < usize::from(self.head_len) {
                f64::from(self.head[i])
            } else {
                -1.0
            }
        };
        let (icmp_code, icmp_type) = match self.icmp {
            Some((t, c)) => (f64::from(c), f64::from(t)),
            None => (-1.0, -1.0),
        };
        [
            f64::from(self.proto),
            dur,
            fw.len.n as f64,
            bw.len.n as f64,
            fw.len.sum,
            bw.len.sum,
            fw.len.max(),
            fw.len.min(),
            fw.len.mean(),
            fw.len.std(),
            bw.len.max(),
            bw.len.min(),
            bw.len.mean(),
            bw.len.std(),
            per_s(all.sum),
            per_s(n_all),
            self.flow_iat.mean(),
            self.flow_iat.std(),
            self.flow_iat.max(),
            self.flow_iat.min(),
            fw.iat.sum,
            fw.iat.mean(),
            fw.iat.std(),
            fw.iat.max(),
            fw.iat.min(),
            bw.iat.sum,
            bw.iat.mean(),
            bw.iat.std(),
            bw.iat.max(),
            bw.iat.min(),
            f64::from(fw.psh),
            f64::from(bw.psh),
            f64::from(fw.urg),
            f64::from(bw.urg),
            f64::from(fw.rst),
            f64::from(bw.rst),
            fw.header_bytes as f64,
            bw.header_bytes as f64,
            per_s(fw.len.n as f64),
            per_s(bw.len.n as f64),
            all.min(),
            all.max(),
            all.mean(),
            all.std(),
            all.var(),
            f64::from(self.flags[0]),
            f64::from(self.flags[1]),
            f64::from(self.flags[2]),
            f64::from(self.flags[3]),
            f64::from(self.flags[4]),
            f64::from(self.flags[5]),
            f64::from(self.flags[6]),
            f64::from(self.flags[7]),
            if fw.len.n > 0 {
                bw.len.n as f64 / fw.len.n as f64
            } else {
                0.0
            },
            if n_all > 0.0 { all.sum / n_all } else { 0.0 },
            fw.len.mean(),
            bw.len.mean(),
            fb[0],
            fb[1],
            fb[2],
            bb[0],
            bb[1],
            bb[2],
            fw.len.n as f64 / sf,
            fw.len.sum / sf,
            bw.len.n as f64 / sf,
            bw.len.sum / sf,
            f64::from(fw.init_win),
            f64::from(bw.init_win),
            f64::from(fw.data_pkts),
            f64::from(fw.min_hdr),
            active.mean(),
            active.std(),
            active.max(),
            active.min(),
            self.idle.mean(),
            self.idle.std(),
            self.idle.max(),
            self.idle.min(),
            icmp_code,
            icmp_type,
            if self.proto == 6 { dur } else { 0.0 },
            ent(fw),
            ent(bw),
            printable(fw),
            printable(bw),
            f64::from(self.tokens),
            head(0),
            head(1),
            head(2),
            head(3),
            head(4),
            head(5),
            head(6),
            head(7),
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
        ]
    }
}

/// CICFlowMeter's bulk state machine for one direction: a bulk is at least
/// [`BULK_MIN_PACKETS`] data packets in a row in one direction, each within 1 s of the previous.
fn update_bulk(b: &mut Bulk, ts: f64, bytes: u64) {
    if !b.active || ts - b.last > SUBFLOW_GAP_US {
        b.active = true;
        b.start = ts;
        b.last = ts;
        b.helper_packets = 1;
        b.helper_bytes = bytes;
        return;
    }
    b.helper_packets += 1;
    b.helper_bytes += bytes;
    if b.helper_packets == BULK_MIN_PACKETS {
        b.count += 1;
        b.packets += u64::from(b.helper_packets);
        b.bytes += b.helper_bytes;
        b.duration_us += ts - b.start;
    } else if b.helper_packets > BULK_MIN_PACKETS {
        b.packets += 1;
        b.bytes += bytes;
        b.duration_us += ts - b.last;
    }
    b.last = ts;
}

/// Shannon entropy of a byte string in bits per byte (0..=8).
pub fn entropy(bytes: &[u8]) -> f32 {
    if bytes.is_empty() {
        return 0.0;
    }
    // H = log2(n) - sum(c * log2(c)) / n over the byte counts c; c * log2(c) comes from a
    // table for the counts a payload sample can have (log2 was 5% of `weir flows`).
    static C_LOG_C: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = C_LOG_C.get_or_init(|| {
        (0..=PAYLOAD_SAMPLE_BYTES)
            .map(|c| {
                if c == 0 {
                    0.0
                } else {
                    c as f64 * (c as f64).log2()
                }
            })
            .collect()
    });
    let mut hist = [0u32; 256];
    for &b in bytes {
        hist[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let mut sum = 0.0f64;
    for &c in hist.iter() {
        if c > 0 {
            sum += match table.get(c as usize) {
                Some(v) => *v,
                None => f64::from(c) * f64::from(c).log2(),
            };
        }
    }
    (n.log2() - sum / n).max(0.0) as f32
}

/// Count occurrences of [`SUSPICIOUS_TOKENS`] (ASCII case-insensitive, overlapping matches
/// counted). One pass over the bytes: only positions whose byte can start a token are compared.
pub fn count_tokens(bytes: &[u8]) -> u32 {
    scan_tokens(bytes).0
}

/// [`count_tokens`] and the set of tokens seen (bit `k` = `SUSPICIOUS_TOKENS[k]`).
pub fn scan_tokens(bytes: &[u8]) -> (u32, u16) {
    // Which tokens can start with each (lower-cased) byte, as a bit set over SUSPICIOUS_TOKENS.
    const STARTS: [u16; 256] = {
        let mut t = [0u16; 256];
        let mut i = 0;
        while i < SUSPICIOUS_TOKENS.len() {
            t[SUSPICIOUS_TOKENS[i][0] as usize] |= 1 << i;
            i += 1;
        }
        t
    };
    let mut n = 0;
    let mut seen = 0u16;
    for (i, &b) in bytes.iter().enumerate() {
        let mut cands = STARTS[b.to_ascii_lowercase() as usize];
        while cands != 0 {
            let k = cands.trailing_zeros() as usize;
            cands &= cands - 1;
            let tok = SUSPICIOUS_TOKENS[k];
            if bytes.len() - i >= tok.len() && bytes[i..i + tok.len()].eq_ignore_ascii_case(tok) {
                n += 1;
                seen |= 1 << k;
            }
        }
    }
    (n, seen)
}

/// Bits of a flow's `signals`: what its sampled forward payloads (the first
/// [`PAYLOAD_SAMPLE_PACKETS`], [`PAYLOAD_SAMPLE_BYTES`] each) showed. The low 16 bits are the
/// [`SUSPICIOUS_TOKENS`] seen; the rest are protocol facts.
pub mod signal {
    /// SQL injection tokens (`union select`, `' or `, `or 1=1`, URL-encoded forms).
    pub const SQLI: u32 = 0b11_1111;
    /// Script injection tokens (`<script`, `javascript:`, `onerror=`).
    pub const XSS: u32 = 0b11_1100_0000;
    /// Path traversal (`../`, `..%2f`, `/etc/passwd`).
    pub const TRAVERSAL: u32 = 0b1_1100_0000_0000;
    /// Shell paths (`cmd.exe`, `/bin/sh`).
    pub const SHELL: u32 = 0b110_0000_0000_0000;
    /// A NOP sled.
    pub const NOP_SLED: u32 = 1 << 15;
    /// A JNDI lookup string (`${jndi:`, also URL-encoded or nested `${${`): Log4Shell.
    pub const JNDI: u32 = 1 << 16;
    /// A bash function definition in a request (`() {`): Shellshock.
    pub const SHELLSHOCK: u32 = 1 << 17;
    /// A TLS heartbeat request claiming more payload than its record holds: Heartbleed.
    pub const HEARTBEAT_OVERREAD: u32 = 1 << 18;
    /// Any TLS heartbeat request (rare in benign traffic since 2014).
    pub const HEARTBEAT: u32 = 1 << 19;
    /// A DNS query for a name with a label of 40+ characters or 100+ in all: data encoded
    /// into names (DNS tunnels, exfiltration).
    pub const DNS_LONG_NAME: u32 = 1 << 20;
    /// An SMB1 Trans2 SESSION_SETUP request: the DoublePulsar implant's command channel
    /// (no client has used it since Windows NT).
    pub const SMB_DOUBLEPULSAR: u32 = 1 << 21;
    /// An SMB1 NT Trans request announcing 64 KiB or more of data: the EternalBlue overflow
    /// (legitimate NT Trans requests carry a few hundred bytes).
    pub const SMB_NT_TRANS_LARGE: u32 = 1 << 22;
}

/// The [`signal`] bits of one SMB1 request over NetBIOS (`00 len len len ff 'SMB' cmd ...`).
pub fn smb_signals(p: &[u8]) -> u32 {
    let u16le = |i: usize| p.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32le = |i: usize| {
        p.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if p.len() < 37 || p[0] != 0 || p[4..8] != *b"\xffSMB" || p[13] & 0x80 != 0 {
        return 0; // not an SMB1 request (byte 13 bit 7: a reply)
    }
    let mut s = 0;
    match p[8] {
        // Trans2: WordCount 15, one setup word, the subcommand.
        0x32 if p[36] == 15 && p.get(63) == Some(&1) && u16le(65) == Some(0x000e) => {
            s |= signal::SMB_DOUBLEPULSAR;
        }
        // NT Trans: TotalDataCount after MaxSetupCount (1), Reserved (2), TotalParameterCount (4).
        0xa0 if p[36] >= 19 && u32le(44).is_some_and(|n| n >= 0x1_0000) => {
            s |= signal::SMB_NT_TRANS_LARGE;
        }
        _ => {}
    }
    s
}

/// Is `p` a DNS query (over UDP) for a long name ([`signal::DNS_LONG_NAME`])?
fn dns_long_name(p: &[u8]) -> bool {
    // header: id, flags (QR = 0, opcode 0), qdcount = 1
    if p.len() < 17 || p[2] & 0xf8 != 0 || p[4..6] != [0, 1] {
        return false;
    }
    let (mut i, mut total, mut longest) = (12usize, 0usize, 0usize);
    while let Some(&len) = p.get(i) {
        let len = usize::from(len);
        if len == 0 {
            break;
        }
        if len > 63 || i + 1 + len > p.len() {
            return false;
        }
        let label = &p[i + 1..i + 1 + len];
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=+/".contains(b))
        {
            return false;
        }
        longest = longest.max(len);
        total += len + 1;
        i += 1 + len;
    }
    longest >= 40 || total >= 100
}

/// `%XX` and `+` decoded (bytes that are not a valid escape are kept).
pub fn percent_decode(p: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        match (
            p[i],
            p.get(i + 1).copied().and_then(hex),
            p.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The protocol facts of one sampled forward payload ([`signal`] bits above 16).
pub fn extra_signals(p: &[u8]) -> u32 {
    let mut s = 0;
    if contains_ci(p, b"${jndi:") || contains_ci(p, b"%24%7bjndi") || contains_ci(p, b"${${") {
        s |= signal::JNDI;
    }
    if p.windows(4).any(|w| w == b"() {") {
        s |= signal::SHELLSHOCK;
    }
    if dns_long_name(p) {
        s |= signal::DNS_LONG_NAME;
    }
    // TLS records in the sample: content type 24 (heartbeat), version 3.x.
    let mut i = 0;
    while i + 5 <= p.len() && (20..=24).contains(&p[i]) && p[i + 1] == 3 {
        let len = usize::from(u16::from_be_bytes([p[i + 3], p[i + 4]]));
        if p[i] == 24 {
            s |= signal::HEARTBEAT;
            // type(1) = request, payload_length(2); the record must also hold >= 16 padding
            if i + 8 <= p.len() && p[i + 5] == 1 {
                let claimed = usize::from(u16::from_be_bytes([p[i + 6], p[i + 7]]));
                if claimed + 3 + 16 > len {
                    s |= signal::HEARTBEAT_OVERREAD;
                }
            }
        }
        i += 5 + len;
    }
    s
}

/// Render the spec as a Markdown table (the features section of docs/FEATURES.md, which
/// `weir_records::columns_markdown` writes).
pub fn spec_markdown() -> String {
    let mut s = format!(
        "## Features ({FEATURE_VERSION})\n\n\
         A packet's *length* is its transport payload length as the IP header states it (CICFlowMeter semantics); \
         times are microseconds; standard deviations are sample (n-1) deviations. Flows follow weir's flow rules \
         (bidirectional 5-tuple + VLAN, initiator = first packet, idle/active timeouts, TCP FIN/RST). \
         Feature 0 is the `proto` column.\n\n\
         | # | column | CICFlowMeter name | unit | meaning | differs from CICFlowMeter |\n|---:|---|---|---|---|---|\n"
    );
    for (i, (f, c)) in FEATURES.iter().zip(feature_columns()).enumerate() {
        s.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            i, c, f.name, f.unit, f.description, f.differs_from_cic
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(ts_us: f64, dir: Direction, len: u32, flags: u8) -> PacketFeatures<'static> {
        PacketFeatures {
            ts_us,
            dir,
            payload_len: len,
            header_len: 20,
            flags,
            window: 100,
            payload: &[],
            icmp: None,
        }
    }

    fn get(v: &[f64; N_FEATURES], name: &str) -> f64 {
        v[FEATURES
            .iter()
            .position(|f| f.name == name)
            .unwrap_or_else(|| panic!("no feature {name}"))]
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), N_FEATURES);
    }

    #[test]
    fn hand_computed_flow() {
        use Direction::*;
        let mut s = FlowStats::new(6, &pkt(0.0, Forward, 0, crate::FLAG_SYN));
        s.add(&pkt(1000.0, Backward, 0, crate::FLAG_SYN | crate::FLAG_ACK));
        s.add(&pkt(
            2000.0,
            Forward,
            100,
            crate::FLAG_ACK | crate::FLAG_PSH,
        ));
        s.add(&pkt(
            6000.0,
            Backward,
            300,
            crate::FLAG_ACK | crate::FLAG_PSH,
        ));
        let v = s.vector();
        assert_eq!(get(&v, "Flow Duration"), 6000.0);
        assert_eq!(get(&v, "Total Fwd Packet"), 2.0);
        assert_eq!(get(&v, "Total Length of Bwd Packet"), 300.0);
        assert_eq!(get(&v, "Fwd Packet Length Mean"), 50.0);
        assert!((get(&v, "Fwd Packet Length Std") - 70.710678).abs() < 1e-5);
        assert!((get(&v, "Flow Bytes/s") - 400.0 / 0.006).abs() < 1e-6);
        assert_eq!(get(&v, "Flow IAT Max"), 4000.0);
        assert_eq!(get(&v, "Flow IAT Min"), 1000.0);
        assert_eq!(get(&v, "Fwd IAT Total"), 2000.0);
        assert_eq!(get(&v, "Bwd IAT Mean"), 5000.0);
        assert_eq!(get(&v, "SYN Flag Count"), 2.0);
        assert_eq!(get(&v, "PSH Flag Count"), 2.0);
        assert_eq!(get(&v, "Fwd PSH Flags"), 1.0);
        assert_eq!(get(&v, "Down/Up Ratio"), 1.0);
        assert_eq!(get(&v, "Average Packet Size"), 100.0);
        assert_eq!(get(&v, "Fwd Header Length"), 40.0);
        assert_eq!(get(&v, "Fwd Act Data Pkts"), 1.0);
        assert_eq!(get(&v, "Subflow Fwd Packets"), 2.0);
        assert_eq!(get(&v, "Active Mean"), 6000.0);
        assert_eq!(get(&v, "Idle Mean"), 0.0);
        assert_eq!(get(&v, "ICMP Type"), -1.0);
        assert_eq!(get(&v, "Total TCP Flow Time"), 6000.0);
        assert_eq!(get(&v, "Fwd Payload Byte 0"), -1.0);
    }

    #[test]
    fn idle_active_and_subflows() {
        use Direction::*;
        let mut s = FlowStats::new(17, &pkt(0.0, Forward, 10, 0));
        s.add(&pkt(100.0, Forward, 10, 0));
        s.add(&pkt(10_000_100.0, Forward, 10, 0)); // 10 s gap: idle period, new subflow
        s.add(&pkt(10_000_300.0, Backward, 10, 0));
        let v = s.vector();
        assert_eq!(get(&v, "Idle Mean"), 10_000_000.0);
        assert_eq!(get(&v, "Active Mean"), 150.0); // periods of 100 and 200 µs
        assert_eq!(get(&v, "Subflow Fwd Packets"), 1.5);
        assert_eq!(get(&v, "Total TCP Flow Time"), 0.0);
    }

    #[test]
    fn bulk_needs_four_data_packets_in_a_row() {
        use Direction::*;
        let mut s = FlowStats::new(6, &pkt(0.0, Forward, 100, 0));
        for i in 1..5 {
            s.add(&pkt(f64::from(i) * 1000.0, Forward, 100, 0));
        }
        let v = s.vector();
        assert_eq!(get(&v, "Fwd Bytes/Bulk Avg"), 500.0);
        assert_eq!(get(&v, "Fwd Packet/Bulk Avg"), 5.0);
        assert!((get(&v, "Fwd Bulk Rate Avg") - 500.0 / 0.004).abs() < 1e-6);
        // Interleaved data in the other direction prevents a bulk.
        let mut s = FlowStats::new(6, &pkt(0.0, Forward, 100, 0));
        for i in 1..8 {
            let dir = if i % 2 == 0 { Forward } else { Backward };
            s.add(&pkt(f64::from(i) * 1000.0, dir, 100, 0));
        }
        assert_eq!(get(&s.vector(), "Fwd Bytes/Bulk Avg"), 0.0);
    }

    #[test]
    fn token_counter_matches_a_naive_scan() {
        let naive = |bytes: &[u8]| -> u32 {
            SUSPICIOUS_TOKENS
                .iter()
                .map(|t| {
                    bytes
                        .windows(t.len())
                        .filter(|w| w.eq_ignore_ascii_case(t))
                        .count() as u32
                })
                .sum()
        };
        assert!(SUSPICIOUS_TOKENS
            .iter()
            .all(|t| t.to_ascii_lowercase() == *t));
        let mut samples: Vec<Vec<u8>> = vec![
            b"GET /?id=1' OR 1=1 UNION SELECT * FROM users -- <ScRiPt>../../../etc/passwd".to_vec(),
            b"....//....%2F..%2f /BIN/SH cmd.EXE javascript:onerror=".to_vec(),
            vec![0x90; 40],
            b"union selec".to_vec(),
            Vec::new(),
        ];
        // Every token cut at each end, and a pseudo-random mix of token pieces.
        let mut x = 12345u32;
        for _ in 0..200 {
            let mut v = Vec::new();
            for _ in 0..8 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let t = SUSPICIOUS_TOKENS[(x >> 16) as usize % SUSPICIOUS_TOKENS.len()];
                let cut = (x >> 8) as usize % (t.len() + 1);
                v.extend_from_slice(if x & 1 == 0 { &t[..cut] } else { t });
            }
            samples.push(v);
        }
        for s in &samples {
            assert_eq!(count_tokens(s), naive(s), "{}", String::from_utf8_lossy(s));
        }
        assert_eq!(count_tokens(&[0x90; 10]), 3);
    }

    #[test]
    fn payload_indicators() {
        let payload = b"GET /index.php?id=1' OR 1=1 UNION SELECT password FROM users HTTP/1.1\r\n";
        let p = PacketFeatures {
            ts_us: 0.0,
            dir: Direction::Forward,
            payload_len: payload.len() as u32,
            header_len: 20,
            flags: 0,
            window: 0,
            payload,
            icmp: None,
        };
        let v = FlowStats::new(6, &p).vector();
        assert_eq!(get(&v, "Fwd Payload Byte 0"), f64::from(b'G'));
        assert_eq!(get(&v, "Fwd Payload Printable Ratio"), 1.0);
        assert!(get(&v, "Fwd Payload Suspicious Tokens") >= 2.0);
        assert!(get(&v, "Fwd Payload Entropy") > 3.0);
        assert_eq!(entropy(&[7; 100]), 0.0);
        assert!((entropy(&(0..=255).collect::<Vec<u8>>()) - 8.0).abs() < 1e-4);
    }

    #[test]
    fn zero_duration_rates_are_zero_not_infinite() {
        let v = FlowStats::new(17, &pkt(5.0, Direction::Forward, 10, 0)).vector();
        assert!(v[..CONTEXT_FIRST].iter().all(|x| x.is_finite()));
        // The context block is unknown until the context tracker fills it in.
        assert!(v[CONTEXT_FIRST..].iter().all(|x| x.is_nan()));
        assert_eq!(get(&v, "Flow Bytes/s"), 0.0);
    }

    #[test]
    fn column_names_are_snake_case_and_unique() {
        let cols = super::feature_columns();
        assert_eq!(cols[0], "proto");
        let pos = |n: &str| FEATURES.iter().position(|f| f.name == n).unwrap();
        assert_eq!(cols[pos("Flow Bytes/s")], "flow_bytes_per_s");
        assert_eq!(cols[pos("FWD Init Win Bytes")], "fwd_init_win_bytes");
        assert_eq!(cols[pos("Total Bwd packets")], "total_bwd_packets");
        assert_eq!(cols[pos("Down/Up Ratio")], "down_up_ratio");
        assert_eq!(cols[pos("Fwd Packet/Bulk Avg")], "fwd_packet_per_bulk_avg");
        let mut seen = std::collections::HashSet::new();
        for c in cols {
            assert!(
                c.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    && !c.starts_with('_')
                    && !c.ends_with('_')
                    && !c.contains("__"),
                "{c}"
            );
            assert!(seen.insert(c.clone()), "{c} twice");
        }
    }
}
