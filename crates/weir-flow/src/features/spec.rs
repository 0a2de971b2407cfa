//! The feature vector's one spec: its version, the parameters its computation depends on,
//! every feature's column, unit and meaning in order ([`FEATURES`]), and the Markdown of
//! docs/FEATURES.md written from it.

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

/// The spec: names, units and meanings, in vector order, each with the name of its position
/// (in [`ix`]). The order is written here and nowhere else: the accumulator writes each value
/// at its named position.
macro_rules! spec {
    ($($id:ident: $ctor:ident($($arg:expr),* $(,)?);)*) => {
        /// Each feature's position in the vector, named once, in [`FEATURES`]'s order.
        pub mod ix {
            #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
            enum Position {
                $($id,)*
            }
            $(
                #[doc = concat!("Position of a feature (", stringify!($id), ").")]
                pub const $id: usize = Position::$id as usize;
            )*
        }

        /// The spec: names, units and meanings, in vector order.
        pub static FEATURES: [FeatureSpec; N_FEATURES] = [$($ctor($($arg),*),)*];
    };
}

spec! {
    PROTOCOL: f("Protocol", "IANA number", "IP protocol of the flow (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...)");
    FLOW_DURATION: f("Flow Duration", "µs", "time from the first to the last packet");
    TOTAL_FWD_PACKET: f("Total Fwd Packet", "packets", "packets from the initiator");
    TOTAL_BWD_PACKETS: f("Total Bwd packets", "packets", "packets from the responder");
    TOTAL_LENGTH_OF_FWD_PACKET: f("Total Length of Fwd Packet", "bytes", "sum of forward payload lengths");
    TOTAL_LENGTH_OF_BWD_PACKET: f("Total Length of Bwd Packet", "bytes", "sum of backward payload lengths");
    FWD_PACKET_LENGTH_MAX: f("Fwd Packet Length Max", "bytes", "largest forward payload");
    FWD_PACKET_LENGTH_MIN: f("Fwd Packet Length Min", "bytes", "smallest forward payload (0 when no forward packet)");
    FWD_PACKET_LENGTH_MEAN: f("Fwd Packet Length Mean", "bytes", "mean forward payload");
    FWD_PACKET_LENGTH_STD: f("Fwd Packet Length Std", "bytes", "sample standard deviation of forward payloads");
    BWD_PACKET_LENGTH_MAX: f("Bwd Packet Length Max", "bytes", "largest backward payload");
    BWD_PACKET_LENGTH_MIN: f("Bwd Packet Length Min", "bytes", "smallest backward payload (0 when no backward packet)");
    BWD_PACKET_LENGTH_MEAN: f("Bwd Packet Length Mean", "bytes", "mean backward payload");
    BWD_PACKET_LENGTH_STD: f("Bwd Packet Length Std", "bytes", "sample standard deviation of backward payloads");
    FLOW_BYTES_PER_S: fx("Flow Bytes/s", "bytes/s", "payload bytes per second of flow duration", "0 for a zero-length flow (CICFlowMeter writes Infinity/NaN)");
    FLOW_PACKETS_PER_S: fx("Flow Packets/s", "packets/s", "packets per second of flow duration", "0 for a zero-length flow (CICFlowMeter writes Infinity)");
    FLOW_IAT_MEAN: f("Flow IAT Mean", "µs", "mean gap between consecutive packets of the flow");
    FLOW_IAT_STD: f("Flow IAT Std", "µs", "sample standard deviation of those gaps");
    FLOW_IAT_MAX: f("Flow IAT Max", "µs", "largest gap");
    FLOW_IAT_MIN: f("Flow IAT Min", "µs", "smallest gap");
    FWD_IAT_TOTAL: f("Fwd IAT Total", "µs", "sum of gaps between forward packets");
    FWD_IAT_MEAN: f("Fwd IAT Mean", "µs", "mean gap between forward packets");
    FWD_IAT_STD: f("Fwd IAT Std", "µs", "sample standard deviation of forward gaps");
    FWD_IAT_MAX: f("Fwd IAT Max", "µs", "largest forward gap");
    FWD_IAT_MIN: f("Fwd IAT Min", "µs", "smallest forward gap");
    BWD_IAT_TOTAL: f("Bwd IAT Total", "µs", "sum of gaps between backward packets");
    BWD_IAT_MEAN: f("Bwd IAT Mean", "µs", "mean gap between backward packets");
    BWD_IAT_STD: f("Bwd IAT Std", "µs", "sample standard deviation of backward gaps");
    BWD_IAT_MAX: f("Bwd IAT Max", "µs", "largest backward gap");
    BWD_IAT_MIN: f("Bwd IAT Min", "µs", "smallest backward gap");
    FWD_PSH_FLAGS: fx("Fwd PSH Flags", "packets", "forward packets with PSH", "counted per packet in each direction (CICFlowMeter 3 counted only some)");
    BWD_PSH_FLAGS: f("Bwd PSH Flags", "packets", "backward packets with PSH");
    FWD_URG_FLAGS: f("Fwd URG Flags", "packets", "forward packets with URG");
    BWD_URG_FLAGS: f("Bwd URG Flags", "packets", "backward packets with URG");
    FWD_RST_FLAGS: f("Fwd RST Flags", "packets", "forward packets with RST");
    BWD_RST_FLAGS: f("Bwd RST Flags", "packets", "backward packets with RST");
    FWD_HEADER_LENGTH: f("Fwd Header Length", "bytes", "sum of forward transport header lengths (TCP incl. options, UDP 8)");
    BWD_HEADER_LENGTH: f("Bwd Header Length", "bytes", "sum of backward transport header lengths");
    FWD_PACKETS_PER_S: f("Fwd Packets/s", "packets/s", "forward packets per second of flow duration (0 for a zero-length flow)");
    BWD_PACKETS_PER_S: f("Bwd Packets/s", "packets/s", "backward packets per second of flow duration");
    PACKET_LENGTH_MIN: f("Packet Length Min", "bytes", "smallest payload, both directions");
    PACKET_LENGTH_MAX: f("Packet Length Max", "bytes", "largest payload, both directions");
    PACKET_LENGTH_MEAN: f("Packet Length Mean", "bytes", "mean payload, both directions");
    PACKET_LENGTH_STD: f("Packet Length Std", "bytes", "sample standard deviation of payloads");
    PACKET_LENGTH_VARIANCE: f("Packet Length Variance", "bytes²", "sample variance of payloads");
    FIN_FLAG_COUNT: f("FIN Flag Count", "packets", "packets with FIN");
    SYN_FLAG_COUNT: f("SYN Flag Count", "packets", "packets with SYN");
    RST_FLAG_COUNT: f("RST Flag Count", "packets", "packets with RST");
    PSH_FLAG_COUNT: f("PSH Flag Count", "packets", "packets with PSH");
    ACK_FLAG_COUNT: f("ACK Flag Count", "packets", "packets with ACK");
    URG_FLAG_COUNT: f("URG Flag Count", "packets", "packets with URG");
    CWR_FLAG_COUNT: f("CWR Flag Count", "packets", "packets with CWR");
    ECE_FLAG_COUNT: f("ECE Flag Count", "packets", "packets with ECE");
    DOWN_UP_RATIO: fx("Down/Up Ratio", "ratio", "backward packets / forward packets", "a real ratio (CICFlowMeter truncated it to an integer)");
    AVERAGE_PACKET_SIZE: fx("Average Packet Size", "bytes", "total payload / total packets", "divides by the packet count (CICFlowMeter divided by count+1)");
    FWD_SEGMENT_SIZE_AVG: f("Fwd Segment Size Avg", "bytes", "mean forward payload");
    BWD_SEGMENT_SIZE_AVG: f("Bwd Segment Size Avg", "bytes", "mean backward payload");
    FWD_BYTES_PER_BULK_AVG: fx("Fwd Bytes/Bulk Avg", "bytes", "mean payload bytes per forward bulk (>= 4 data packets in a row, gaps < 1 s)", "bulk counters kept per direction and reset by the other direction's data");
    FWD_PACKET_PER_BULK_AVG: f("Fwd Packet/Bulk Avg", "packets", "mean packets per forward bulk");
    FWD_BULK_RATE_AVG: fx("Fwd Bulk Rate Avg", "bytes/s", "forward bulk bytes / forward bulk duration", "seconds as the unit of the duration (CICFlowMeter mixed µs and s)");
    BWD_BYTES_PER_BULK_AVG: f("Bwd Bytes/Bulk Avg", "bytes", "mean payload bytes per backward bulk");
    BWD_PACKET_PER_BULK_AVG: f("Bwd Packet/Bulk Avg", "packets", "mean packets per backward bulk");
    BWD_BULK_RATE_AVG: f("Bwd Bulk Rate Avg", "bytes/s", "backward bulk bytes / backward bulk duration");
    SUBFLOW_FWD_PACKETS: fx("Subflow Fwd Packets", "packets", "forward packets per subflow (a gap > 1 s starts a subflow)", "divides by the subflow count (CICFlowMeter's counter started at -1 and is often 0 in its output)");
    SUBFLOW_FWD_BYTES: fx("Subflow Fwd Bytes", "bytes", "forward payload bytes per subflow", "per subflow, not per packet");
    SUBFLOW_BWD_PACKETS: f("Subflow Bwd Packets", "packets", "backward packets per subflow");
    SUBFLOW_BWD_BYTES: f("Subflow Bwd Bytes", "bytes", "backward payload bytes per subflow");
    FWD_INIT_WIN_BYTES: f("FWD Init Win Bytes", "bytes", "TCP window of the first forward packet (0 if not TCP)");
    BWD_INIT_WIN_BYTES: f("Bwd Init Win Bytes", "bytes", "TCP window of the first backward packet (0 if none)");
    FWD_ACT_DATA_PKTS: f("Fwd Act Data Pkts", "packets", "forward packets with at least one byte of payload");
    FWD_SEG_SIZE_MIN: f("Fwd Seg Size Min", "bytes", "smallest forward transport header length");
    ACTIVE_MEAN: f("Active Mean", "µs", "mean active period (activity separated by > 5 s of silence)");
    ACTIVE_STD: f("Active Std", "µs", "sample standard deviation of active periods");
    ACTIVE_MAX: f("Active Max", "µs", "longest active period");
    ACTIVE_MIN: f("Active Min", "µs", "shortest active period");
    IDLE_MEAN: f("Idle Mean", "µs", "mean idle period (> 5 s of silence)");
    IDLE_STD: f("Idle Std", "µs", "sample standard deviation of idle periods");
    IDLE_MAX: f("Idle Max", "µs", "longest idle period");
    IDLE_MIN: f("Idle Min", "µs", "shortest idle period");
    ICMP_CODE: f("ICMP Code", "code", "ICMP/ICMPv6 code of the first packet, -1 if not ICMP");
    ICMP_TYPE: f("ICMP Type", "type", "ICMP/ICMPv6 type of the first packet, -1 if not ICMP");
    TOTAL_TCP_FLOW_TIME: f("Total TCP Flow Time", "µs", "flow duration for TCP flows, 0 otherwise");
    // ---- weir payload indicators ----
    FWD_PAYLOAD_ENTROPY: f("Fwd Payload Entropy", "bits/byte", "mean Shannon entropy of the first 512 bytes of the first 3 forward payloads (0 if none)");
    BWD_PAYLOAD_ENTROPY: f("Bwd Payload Entropy", "bits/byte", "the same for backward payloads");
    FWD_PAYLOAD_PRINTABLE_RATIO: f("Fwd Payload Printable Ratio", "ratio", "share of printable ASCII (0x20-0x7e, tab, CR, LF) in the sampled forward payload bytes");
    BWD_PAYLOAD_PRINTABLE_RATIO: f("Bwd Payload Printable Ratio", "ratio", "the same for backward payloads");
    FWD_PAYLOAD_SUSPICIOUS_TOKENS: f("Fwd Payload Suspicious Tokens", "count", "web-attack/exploit tokens in the sampled forward payloads (SQL keywords, script tags, traversal, shell, NOP sleds; see SUSPICIOUS_TOKENS)");
    FWD_PAYLOAD_BYTE_0: f("Fwd Payload Byte 0", "byte value", "first byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_1: f("Fwd Payload Byte 1", "byte value", "second byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_2: f("Fwd Payload Byte 2", "byte value", "third byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_3: f("Fwd Payload Byte 3", "byte value", "fourth byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_4: f("Fwd Payload Byte 4", "byte value", "fifth byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_5: f("Fwd Payload Byte 5", "byte value", "sixth byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_6: f("Fwd Payload Byte 6", "byte value", "seventh byte of the first forward payload, -1 if none");
    FWD_PAYLOAD_BYTE_7: f("Fwd Payload Byte 7", "byte value", "eighth byte of the first forward payload, -1 if none");
    // ---- weir context: what the flow's hosts did in the 30 s up to its first packet ----
    SRC_FLOWS_30S: f("Src Flows 30s", "flows", "flows the initiator started in the 30 s up to this flow's start, this one included (see crate::context; NaN when unknown)");
    SRC_DST_HOSTS_30S: f("Src Dst Hosts 30s", "hosts", "distinct responder addresses among those flows");
    SRC_DST_PORTS_30S: f("Src Dst Ports 30s", "ports", "distinct (protocol, responder port) pairs among those flows (ICMP counts as one port)");
    SRC_SAME_SERVICE_30S: f("Src Same Service 30s", "flows", "those of the flows that went to this flow's responder address, protocol and port");
    DST_FLOWS_30S: f("Dst Flows 30s", "flows", "flows started towards this flow's responder address in the same 30 s, this one included");
    DST_SRC_HOSTS_30S: f("Dst Src Hosts 30s", "hosts", "distinct initiator addresses among those flows");
}

/// Index of the first context feature; the context block runs to the end of the vector and
/// is filled by [`crate::context::ContextTracker`] (NaN until then).
pub const CONTEXT_FIRST: usize = N_FEATURES - crate::context::N_CONTEXT;

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
