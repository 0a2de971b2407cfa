//! Context features: what a flow's two hosts did in the seconds before it started.
//!
//! A flood, a scan or a reflection attack is thousands of flows that each look ordinary: one
//! SYN, one datagram, one DNS answer. What gives them away is the company they keep: one
//! source that opened 10,000 flows to 10,000 ports in a few seconds, or one destination that
//! 700 sources talk to at once. This block puts that company into every flow's vector.
//!
//! Definition (causal, so it can be computed while streaming): for a flow that starts at `t`,
//! count the flow starts in `(t - 30 s, t]`, this one included, of the same initiator and of
//! the same responder. The window also ends at the last [`CONTEXT_MAX_EVENTS`] flow starts of
//! the capture, which bounds memory whatever the traffic (a flood of spoofed sources shrinks
//! the window instead of growing the state).
//!
//! Starts are fed in capture order (by the file offset of the flow's first packet), so the
//! values do not depend on how [`crate::extract`] shards the flow table.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

use crate::features::CONTEXT_FIRST;
use crate::FlowRecord;

/// Number of context features (the last block of the vector).
pub const N_CONTEXT: usize = 6;
/// Length of the context window (30 s).
pub const CONTEXT_WINDOW_NS: i64 = 30 * 1_000_000_000;
/// At most this many flow starts are kept in the window (about 20 MB with the counters).
pub const CONTEXT_MAX_EVENTS: usize = 1 << 18;

type Hasher = foldhash::fast::RandomState;

/// The start of a flow, as the flow table reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowStart {
    /// File offset of the flow's first packet (unique per flow in one capture).
    pub offset: u64,
    /// Timestamp of that packet, ns.
    pub ts_ns: i64,
    /// Initiator address.
    pub src: IpAddr,
    /// Responder address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Responder port for TCP, UDP and SCTP; 0 for every other protocol (ICMP's "port" in
    /// a flow record is a code, not a service).
    pub dport: u16,
}

#[derive(Default)]
struct SrcState {
    flows: u32,
    hosts: HashMap<IpAddr, u32, Hasher>,
    ports: HashMap<(u8, u16), u32, Hasher>,
}

#[derive(Default)]
struct DstState {
    flows: u32,
    srcs: HashMap<IpAddr, u32, Hasher>,
}

type Service = (IpAddr, IpAddr, u8, u16);

/// Sliding-window counters over flow starts; see the module documentation.
#[derive(Default)]
pub struct ContextTracker {
    window: VecDeque<FlowStart>,
    src: HashMap<IpAddr, SrcState, Hasher>,
    dst: HashMap<IpAddr, DstState, Hasher>,
    service: HashMap<Service, u32, Hasher>,
    /// Context of flows that started but were not filled in yet, by first offset.
    pending: HashMap<u64, [f64; N_CONTEXT], Hasher>,
    now: i64,
}

fn inc<K: Hash + Eq>(m: &mut HashMap<K, u32, Hasher>, k: K) -> u32 {
    let c = m.entry(k).or_insert(0);
    *c += 1;
    *c
}

fn dec<K: Hash + Eq>(m: &mut HashMap<K, u32, Hasher>, k: K) {
    if let Some(c) = m.get_mut(&k) {
        *c -= 1;
        if *c == 0 {
            m.remove(&k);
        }
    }
}

impl ContextTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a flow start (in capture order) and keep its context until [`Self::fill`].
    pub fn start(&mut self, s: &FlowStart) {
        self.now = self.now.max(s.ts_ns);
        let horizon = self.now.saturating_sub(CONTEXT_WINDOW_NS);
        while let Some(old) = self.window.front() {
            if old.ts_ns > horizon && self.window.len() < CONTEXT_MAX_EVENTS {
                break;
            }
            let old = self.window.pop_front().expect("front exists");
            self.forget(&old);
        }
        self.window.push_back(*s);
        let port = s.dport;
        let service = inc(&mut self.service, (s.src, s.dst, s.proto, port));
        let src = self.src.entry(s.src).or_default();
        src.flows += 1;
        inc(&mut src.hosts, s.dst);
        inc(&mut src.ports, (s.proto, port));
        let src_v = [src.flows, src.hosts.len() as u32, src.ports.len() as u32];
        let dst = self.dst.entry(s.dst).or_default();
        dst.flows += 1;
        inc(&mut dst.srcs, s.src);
        let v = [
            src_v[0],
            src_v[1],
            src_v[2],
            service,
            dst.flows,
            dst.srcs.len() as u32,
        ];
        self.pending.insert(s.offset, v.map(f64::from));
    }

    fn forget(&mut self, s: &FlowStart) {
        let port = s.dport;
        dec(&mut self.service, (s.src, s.dst, s.proto, port));
        if let Some(src) = self.src.get_mut(&s.src) {
            src.flows -= 1;
            if src.flows == 0 {
                self.src.remove(&s.src);
            } else {
                dec(&mut src.hosts, s.dst);
                dec(&mut src.ports, (s.proto, port));
            }
        }
        if let Some(dst) = self.dst.get_mut(&s.dst) {
            dst.flows -= 1;
            if dst.flows == 0 {
                self.dst.remove(&s.dst);
            } else {
                dec(&mut dst.srcs, s.src);
            }
        }
    }

    /// Write the context block of each flow whose start was recorded (left NaN otherwise).
    pub fn fill(&mut self, flows: &mut [FlowRecord]) {
        for f in flows {
            if let Some(v) = self.pending.remove(&f.first_offset) {
                f.features[CONTEXT_FIRST..].copy_from_slice(&v);
            }
        }
    }

    /// Flow starts in the window now.
    pub fn window_len(&self) -> usize {
        self.window.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn st(offset: u64, t: i64, src: &str, dst: &str, dport: u16) -> FlowStart {
        FlowStart {
            offset,
            ts_ns: t,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: 6,
            dport,
        }
    }

    fn ctx(t: &mut ContextTracker, offset: u64) -> [f64; N_CONTEXT] {
        t.pending.remove(&offset).expect("start recorded")
    }

    #[test]
    fn scan_counts_ports_and_hosts() {
        let mut t = ContextTracker::new();
        for p in 0..100u16 {
            t.start(&st(
                u64::from(p),
                i64::from(p) * 1000,
                "10.0.0.1",
                "10.0.0.2",
                p,
            ));
        }
        let v = ctx(&mut t, 99);
        assert_eq!(v, [100.0, 1.0, 100.0, 1.0, 100.0, 1.0]);
        // A second, unrelated source sees only itself; the victim's count includes both.
        t.start(&st(1000, 200_000, "10.0.0.9", "10.0.0.2", 80));
        assert_eq!(ctx(&mut t, 1000), [1.0, 1.0, 1.0, 1.0, 101.0, 2.0]);
    }

    #[test]
    fn window_forgets_old_starts() {
        let mut t = ContextTracker::new();
        t.start(&st(1, 0, "10.0.0.1", "10.0.0.2", 80));
        t.start(&st(2, 10 * S, "10.0.0.1", "10.0.0.3", 80));
        assert_eq!(ctx(&mut t, 2), [2.0, 2.0, 1.0, 1.0, 1.0, 1.0]);
        // 31 s after the first start: only the second is left in the window.
        t.start(&st(3, 31 * S, "10.0.0.1", "10.0.0.2", 80));
        assert_eq!(ctx(&mut t, 3), [2.0, 2.0, 1.0, 1.0, 1.0, 1.0]);
        // 45 s: the second went too.
        t.start(&st(4, 45 * S, "10.0.0.1", "10.0.0.4", 22));
        assert_eq!(ctx(&mut t, 4), [2.0, 2.0, 2.0, 1.0, 1.0, 1.0]);
        assert_eq!(t.window_len(), 2);
    }

    #[test]
    fn memory_is_bounded_by_the_event_cap() {
        let mut t = ContextTracker::new();
        let n = CONTEXT_MAX_EVENTS as u64 + 10;
        for i in 0..n {
            let src = IpAddr::from(std::net::Ipv4Addr::from(i as u32));
            t.start(&FlowStart {
                offset: i,
                ts_ns: 0,
                src,
                dst: "10.0.0.2".parse().unwrap(),
                proto: 17,
                dport: 53,
            });
            t.pending.remove(&i);
        }
        assert_eq!(t.window_len(), CONTEXT_MAX_EVENTS);
        assert_eq!(t.src.len(), CONTEXT_MAX_EVENTS);
        let d = &t.dst[&"10.0.0.2".parse::<IpAddr>().unwrap()];
        assert_eq!(d.flows as usize, CONTEXT_MAX_EVENTS);
        assert_eq!(d.srcs.len(), CONTEXT_MAX_EVENTS);
    }
}
