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

mod payload;
mod spec;

pub use payload::*;
pub use spec::*;

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

    /// What the sampled forward payloads showed ([`signal`] bits); not a model feature.
    pub fn signals(&self) -> u32 {
        self.signals
    }

    /// The feature vector: each value written at its named position ([`ix`]), so the order
    /// lives in the spec alone.
    pub fn vector(&self) -> [f64; N_FEATURES] {
        self.fill().v
    }

    fn fill(&self) -> Vector {
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
        let mut v = Vector::default();
        v.put(ix::PROTOCOL, f64::from(self.proto));
        v.put(ix::FLOW_DURATION, dur);
        v.put(ix::TOTAL_FWD_PACKET, fw.len.n as f64);
        v.put(ix::TOTAL_BWD_PACKETS, bw.len.n as f64);
        v.put(ix::TOTAL_LENGTH_OF_FWD_PACKET, fw.len.sum);
        v.put(ix::TOTAL_LENGTH_OF_BWD_PACKET, bw.len.sum);
        v.put(ix::FWD_PACKET_LENGTH_MAX, fw.len.max());
        v.put(ix::FWD_PACKET_LENGTH_MIN, fw.len.min());
        v.put(ix::FWD_PACKET_LENGTH_MEAN, fw.len.mean());
        v.put(ix::FWD_PACKET_LENGTH_STD, fw.len.std());
        v.put(ix::BWD_PACKET_LENGTH_MAX, bw.len.max());
        v.put(ix::BWD_PACKET_LENGTH_MIN, bw.len.min());
        v.put(ix::BWD_PACKET_LENGTH_MEAN, bw.len.mean());
        v.put(ix::BWD_PACKET_LENGTH_STD, bw.len.std());
        v.put(ix::FLOW_BYTES_PER_S, per_s(all.sum));
        v.put(ix::FLOW_PACKETS_PER_S, per_s(n_all));
        v.put(ix::FLOW_IAT_MEAN, self.flow_iat.mean());
        v.put(ix::FLOW_IAT_STD, self.flow_iat.std());
        v.put(ix::FLOW_IAT_MAX, self.flow_iat.max());
        v.put(ix::FLOW_IAT_MIN, self.flow_iat.min());
        v.put(ix::FWD_IAT_TOTAL, fw.iat.sum);
        v.put(ix::FWD_IAT_MEAN, fw.iat.mean());
        v.put(ix::FWD_IAT_STD, fw.iat.std());
        v.put(ix::FWD_IAT_MAX, fw.iat.max());
        v.put(ix::FWD_IAT_MIN, fw.iat.min());
        v.put(ix::BWD_IAT_TOTAL, bw.iat.sum);
        v.put(ix::BWD_IAT_MEAN, bw.iat.mean());
        v.put(ix::BWD_IAT_STD, bw.iat.std());
        v.put(ix::BWD_IAT_MAX, bw.iat.max());
        v.put(ix::BWD_IAT_MIN, bw.iat.min());
        v.put(ix::FWD_PSH_FLAGS, f64::from(fw.psh));
        v.put(ix::BWD_PSH_FLAGS, f64::from(bw.psh));
        v.put(ix::FWD_URG_FLAGS, f64::from(fw.urg));
        v.put(ix::BWD_URG_FLAGS, f64::from(bw.urg));
        v.put(ix::FWD_RST_FLAGS, f64::from(fw.rst));
        v.put(ix::BWD_RST_FLAGS, f64::from(bw.rst));
        v.put(ix::FWD_HEADER_LENGTH, fw.header_bytes as f64);
        v.put(ix::BWD_HEADER_LENGTH, bw.header_bytes as f64);
        v.put(ix::FWD_PACKETS_PER_S, per_s(fw.len.n as f64));
        v.put(ix::BWD_PACKETS_PER_S, per_s(bw.len.n as f64));
        v.put(ix::PACKET_LENGTH_MIN, all.min());
        v.put(ix::PACKET_LENGTH_MAX, all.max());
        v.put(ix::PACKET_LENGTH_MEAN, all.mean());
        v.put(ix::PACKET_LENGTH_STD, all.std());
        v.put(ix::PACKET_LENGTH_VARIANCE, all.var());
        v.put(ix::FIN_FLAG_COUNT, f64::from(self.flags[0]));
        v.put(ix::SYN_FLAG_COUNT, f64::from(self.flags[1]));
        v.put(ix::RST_FLAG_COUNT, f64::from(self.flags[2]));
        v.put(ix::PSH_FLAG_COUNT, f64::from(self.flags[3]));
        v.put(ix::ACK_FLAG_COUNT, f64::from(self.flags[4]));
        v.put(ix::URG_FLAG_COUNT, f64::from(self.flags[5]));
        v.put(ix::CWR_FLAG_COUNT, f64::from(self.flags[6]));
        v.put(ix::ECE_FLAG_COUNT, f64::from(self.flags[7]));
        v.put(
            ix::DOWN_UP_RATIO,
            if fw.len.n > 0 {
                bw.len.n as f64 / fw.len.n as f64
            } else {
                0.0
            },
        );
        v.put(
            ix::AVERAGE_PACKET_SIZE,
            if n_all > 0.0 { all.sum / n_all } else { 0.0 },
        );
        v.put(ix::FWD_SEGMENT_SIZE_AVG, fw.len.mean());
        v.put(ix::BWD_SEGMENT_SIZE_AVG, bw.len.mean());
        v.put(ix::FWD_BYTES_PER_BULK_AVG, fb[0]);
        v.put(ix::FWD_PACKET_PER_BULK_AVG, fb[1]);
        v.put(ix::FWD_BULK_RATE_AVG, fb[2]);
        v.put(ix::BWD_BYTES_PER_BULK_AVG, bb[0]);
        v.put(ix::BWD_PACKET_PER_BULK_AVG, bb[1]);
        v.put(ix::BWD_BULK_RATE_AVG, bb[2]);
        v.put(ix::SUBFLOW_FWD_PACKETS, fw.len.n as f64 / sf);
        v.put(ix::SUBFLOW_FWD_BYTES, fw.len.sum / sf);
        v.put(ix::SUBFLOW_BWD_PACKETS, bw.len.n as f64 / sf);
        v.put(ix::SUBFLOW_BWD_BYTES, bw.len.sum / sf);
        v.put(ix::FWD_INIT_WIN_BYTES, f64::from(fw.init_win));
        v.put(ix::BWD_INIT_WIN_BYTES, f64::from(bw.init_win));
        v.put(ix::FWD_ACT_DATA_PKTS, f64::from(fw.data_pkts));
        v.put(ix::FWD_SEG_SIZE_MIN, f64::from(fw.min_hdr));
        v.put(ix::ACTIVE_MEAN, active.mean());
        v.put(ix::ACTIVE_STD, active.std());
        v.put(ix::ACTIVE_MAX, active.max());
        v.put(ix::ACTIVE_MIN, active.min());
        v.put(ix::IDLE_MEAN, self.idle.mean());
        v.put(ix::IDLE_STD, self.idle.std());
        v.put(ix::IDLE_MAX, self.idle.max());
        v.put(ix::IDLE_MIN, self.idle.min());
        v.put(ix::ICMP_CODE, icmp_code);
        v.put(ix::ICMP_TYPE, icmp_type);
        v.put(
            ix::TOTAL_TCP_FLOW_TIME,
            if self.proto == 6 { dur } else { 0.0 },
        );
        v.put(ix::FWD_PAYLOAD_ENTROPY, ent(fw));
        v.put(ix::BWD_PAYLOAD_ENTROPY, ent(bw));
        v.put(ix::FWD_PAYLOAD_PRINTABLE_RATIO, printable(fw));
        v.put(ix::BWD_PAYLOAD_PRINTABLE_RATIO, printable(bw));
        v.put(ix::FWD_PAYLOAD_SUSPICIOUS_TOKENS, f64::from(self.tokens));
        v.put(ix::FWD_PAYLOAD_BYTE_0, head(0));
        v.put(ix::FWD_PAYLOAD_BYTE_1, head(1));
        v.put(ix::FWD_PAYLOAD_BYTE_2, head(2));
        v.put(ix::FWD_PAYLOAD_BYTE_3, head(3));
        v.put(ix::FWD_PAYLOAD_BYTE_4, head(4));
        v.put(ix::FWD_PAYLOAD_BYTE_5, head(5));
        v.put(ix::FWD_PAYLOAD_BYTE_6, head(6));
        v.put(ix::FWD_PAYLOAD_BYTE_7, head(7));
        // The context block stays NaN: `crate::context::ContextTracker` fills it.
        v
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

/// A feature vector being filled, value by value at named positions; the context block
/// starts (and here stays) NaN. It notes which positions were written, and which twice, so a
/// test can tell that every feature of the spec has exactly one value.
struct Vector {
    v: [f64; N_FEATURES],
    written: u128,
    twice: u128,
}

const _: () = assert!(N_FEATURES <= 128, "Vector's masks hold 128 positions");

/// The positions [`FlowStats::vector`] writes: all but the context block.
#[cfg(test)]
const FILLED: u128 = (1u128 << CONTEXT_FIRST) - 1;

impl Default for Vector {
    fn default() -> Self {
        Vector {
            v: [f64::NAN; N_FEATURES],
            written: 0,
            twice: 0,
        }
    }
}

impl Vector {
    #[inline]
    fn put(&mut self, i: usize, x: f64) {
        let bit = 1u128 << i;
        self.twice |= self.written & bit;
        self.written |= bit;
        self.v[i] = x;
    }
}

#[cfg(test)]
mod tests;
