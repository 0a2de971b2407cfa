//! The flow table: bidirectional 5-tuple (+ VLAN) flows with idle and active timeouts and
//! TCP FIN/RST ends. Memory is bounded by the number of *active* flows: flows are handed out as
//! soon as they expire, found in O(1) per packet through time-ordered intrusive lists, one per
//! timeout: answered flows (idle timeout), unanswered TCP and non-TCP flows (the shorter
//! unanswered timeouts), and closed TCP flows lingering for their last ACKs.

use std::collections::HashMap;
use std::net::IpAddr;

use weir_capture::{Decoded, Fragment, SkipReason, Tunnel, FLAG_ACK, FLAG_FIN, FLAG_RST, FLAG_SYN};

use crate::community_id::community_id;
use crate::context::FlowStart;
use crate::features::{FlowStats, PacketFeatures, N_FEATURES};
use crate::Direction;

type Hasher = foldhash::fast::RandomState;
/// (src, dst, protocol, IP id) of a fragment chain.
type FragKey = (IpAddr, IpAddr, u8, u32);

/// Flow table settings.
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    /// A flow that has seen both directions ends after this long without a packet (default 120 s).
    pub idle_timeout_ns: i64,
    /// A non-TCP flow that never got an answer (packets in one direction only) ends after this
    /// long without a packet (default 45 s): one-way broadcasts, beacons and scans become one
    /// flow per burst, as in Suricata (30 s for unanswered UDP/ICMP) and Zeek (60 s). 45 s sits
    /// between the two most common announcement periods (30 s, 60 s) so jitter does not split
    /// such a flow at random.
    pub unanswered_timeout_ns: i64,
    /// The same for TCP flows with packets in one direction only (default 60 s, Suricata's TCP
    /// "new" timeout; long enough for the 1-2-4-8-16-32 s SYN retransmission backoff).
    pub unanswered_tcp_timeout_ns: i64,
    /// A flow longer than this is cut and continues as a new flow (default 30 min).
    pub active_timeout_ns: i64,
    /// How long a TCP flow closed by FIN/FIN or RST keeps absorbing its trailing packets (default 5 s).
    pub closed_linger_ns: i64,
    /// Whether FIN (both directions) and RST end TCP flows (default true).
    pub tcp_close: bool,
    /// At most this many IP fragment chains are tracked at once.
    pub max_fragment_chains: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            idle_timeout_ns: 120 * 1_000_000_000,
            unanswered_timeout_ns: 45 * 1_000_000_000,
            unanswered_tcp_timeout_ns: 60 * 1_000_000_000,
            active_timeout_ns: 1800 * 1_000_000_000,
            closed_linger_ns: 5 * 1_000_000_000,
            tcp_close: true,
            max_fragment_chains: 65_536,
        }
    }
}

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// No packet for the idle timeout.
    Idle,
    /// Reached the active timeout; the conversation continues in a new flow.
    Active,
    /// TCP: both sides sent FIN.
    Fin,
    /// TCP: a RST was seen.
    Rst,
    /// A new TCP connection (SYN) reused the tuple of a closed one.
    Reused,
    /// End of the capture.
    EndOfCapture,
}

impl EndReason {
    /// Short name used in output.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Reused => "reused",
            EndReason::EndOfCapture => "eof",
        }
    }
}

/// One finished flow with its features.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRecord {
    /// Community ID v1 (seed 0).
    pub community_id: String,
    /// IP protocol.
    pub proto: u8,
    /// Initiator address (sender of the first packet).
    pub src_ip: IpAddr,
    /// Initiator port (ICMP: type of the first packet).
    pub src_port: u16,
    /// Responder address.
    pub dst_ip: IpAddr,
    /// Responder port (ICMP: code of the first packet).
    pub dst_port: u16,
    /// Outer VLAN id, 0 if untagged.
    pub vlan: u16,
    /// Tunnel the packets were decapsulated from, if any.
    pub tunnel: Option<Tunnel>,
    /// First packet, ns since the epoch.
    pub first_ts_ns: i64,
    /// Last packet, ns since the epoch.
    pub last_ts_ns: i64,
    /// Packets from the initiator.
    pub packets_fwd: u64,
    /// Packets from the responder.
    pub packets_bwd: u64,
    /// Bytes on the wire (whole frames) from the initiator.
    pub bytes_fwd: u64,
    /// Bytes on the wire from the responder.
    pub bytes_bwd: u64,
    /// Byte offset in the capture of the first packet's record.
    pub first_offset: u64,
    /// Byte offset in the capture of the last packet's record. Together with the tuple, VLAN
    /// and time range this is enough to carve the flow's packets back out: read the records in
    /// `first_offset..=last_offset` and keep those that decode to this flow.
    pub last_offset: u64,
    /// Why the flow ended.
    pub end_reason: EndReason,
    /// The feature vector ([`crate::FEATURES`] order).
    pub features: [f64; N_FEATURES],
    /// What the sampled forward payloads showed ([`crate::features::signal`] bits); read by
    /// the behaviour detectors, not a model feature.
    pub signals: u32,
    /// The behaviour detectors' finding, once [`crate::BehaviourTracker::mark`] saw the flow.
    pub behaviour: Option<crate::Finding>,
}

/// One packet as the flow table sees it.
#[derive(Clone, Copy, Debug)]
pub struct PacketInfo<'a> {
    /// Timestamp, ns since the epoch.
    pub ts_ns: i64,
    /// Frame length on the wire.
    pub wire_len: u32,
    /// Offset of the packet's record in the capture.
    pub offset: u64,
    /// Decoded headers.
    pub decoded: &'a Decoded<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey {
    lo_ip: IpAddr,
    hi_ip: IpAddr,
    lo_port: u16,
    hi_port: u16,
    proto: u8,
    vlan: u16,
}

const NIL: u32 = u32::MAX;
const LIST_OPEN: u8 = 0;
const LIST_CLOSED: u8 = 1;
const LIST_NEW: u8 = 2;
const LIST_NEW_TCP: u8 = 3;
const N_LISTS: usize = 4;

struct Flow {
    key: FlowKey,
    src_ip: IpAddr,
    src_port: u16,
    dst_ip: IpAddr,
    dst_port: u16,
    tunnel: Option<Tunnel>,
    first_ts_ns: i64,
    last_ts_ns: i64,
    packets: [u64; 2],
    bytes: [u64; 2],
    first_offset: u64,
    last_offset: u64,
    fin: [bool; 2],
    close: Option<EndReason>,
    stats: FlowStats,
}

struct Slot {
    flow: Option<Flow>,
    prev: u32,
    next: u32,
    list: u8,
}

#[derive(Default, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// Counters of the flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowCounters {
    /// Packets that joined a flow.
    pub packets: u64,
    /// Flows created.
    pub flows: u64,
    /// Non-first fragments attributed to their flow through the first fragment.
    pub fragments_attributed: u64,
    /// Non-first fragments whose first fragment was never seen (skipped).
    pub fragments_orphaned: u64,
    /// Fragment chains forgotten, oldest first, to make room for new ones
    /// ([`FlowConfig::max_fragment_chains`]); their later fragments count as orphaned.
    pub fragment_chains_evicted: u64,
    /// Packets that came through a tunnel.
    pub tunneled: u64,
    /// Highest number of flows open at once.
    pub peak_open: u64,
    /// Flows handed out, by IP protocol number.
    pub by_proto: [u64; 256],
}

impl Default for FlowCounters {
    fn default() -> Self {
        FlowCounters {
            packets: 0,
            flows: 0,
            fragments_attributed: 0,
            fragments_orphaned: 0,
            fragment_chains_evicted: 0,
            tunneled: 0,
            peak_open: 0,
            by_proto: [0; 256],
        }
    }
}

/// The flow table. Feed packets in capture order with [`FlowTable::push`], then call
/// [`FlowTable::finish`]; finished flows are appended to the output vector as they end.
pub struct FlowTable {
    cfg: FlowConfig,
    map: HashMap<FlowKey, u32, Hasher>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    lists: [List; N_LISTS],
    /// Open fragment chains: ports of the first fragment, and the chain's number in
    /// `frag_order`'s sequence.
    frags: HashMap<FragKey, (u16, u16, u64), Hasher>,
    /// Chains in the order they started (with their sequence number; an entry whose chain
    /// ended or restarted is stale and skipped): who is evicted first when the map is full.
    frag_order: std::collections::VecDeque<(FragKey, u64)>,
    frag_seq: u64,
    now: i64,
    last_sweep: i64,
    counters: FlowCounters,
    starts: Option<Vec<FlowStart>>,
}

impl FlowTable {
    /// An empty table. Unanswered timeouts longer than the idle timeout are capped to it.
    pub fn new(mut cfg: FlowConfig) -> Self {
        cfg.unanswered_timeout_ns = cfg.unanswered_timeout_ns.min(cfg.idle_timeout_ns);
        cfg.unanswered_tcp_timeout_ns = cfg.unanswered_tcp_timeout_ns.min(cfg.idle_timeout_ns);
        FlowTable {
            cfg,
            map: HashMap::with_hasher(Hasher::default()),
            slots: Vec::new(),
            free: Vec::new(),
            lists: [List {
                head: NIL,
                tail: NIL,
            }; N_LISTS],
            frags: HashMap::with_hasher(Hasher::default()),
            frag_order: std::collections::VecDeque::new(),
            frag_seq: 0,
            now: i64::MIN,
            last_sweep: i64::MIN,
            counters: FlowCounters::default(),
            starts: None,
        }
    }

    /// From now on, remember every flow start for [`FlowTable::drain_starts`] (the input of
    /// the context features). Whoever turns this on must drain the starts regularly.
    pub fn record_starts(&mut self) {
        self.starts.get_or_insert_with(Vec::new);
    }

    /// The flow starts recorded since the last call, in packet order.
    pub fn drain_starts(&mut self) -> std::vec::Drain<'_, FlowStart> {
        self.starts.get_or_insert_with(Vec::new).drain(..)
    }

    /// Counters so far.
    pub fn counters(&self) -> FlowCounters {
        self.counters
    }

    /// Flows currently open.
    pub fn open_flows(&self) -> usize {
        self.map.len()
    }

    /// Move the table's clock to `ts_ns` (if later) and end the flows that expired by then.
    /// [`FlowTable::push`] does this itself; call it for packets seen but not pushed (e.g.
    /// those of another shard) so that flows end at the same packet whatever the sharding.
    pub fn advance(&mut self, ts_ns: i64, out: &mut Vec<FlowRecord>) {
        if ts_ns > self.now {
            self.now = ts_ns;
        }
        // Sweep expired flows at most once per second of capture time.
        if self.now.saturating_sub(self.last_sweep) >= 1_000_000_000 {
            self.sweep(out);
            self.last_sweep = self.now;
        }
    }

    /// Add one packet. Returns `Err(SkipReason::Fragment)` for a non-first fragment whose
    /// first fragment was not seen; flows that ended are appended to `out`.
    pub fn push(
        &mut self,
        p: &PacketInfo<'_>,
        out: &mut Vec<FlowRecord>,
    ) -> Result<(), SkipReason> {
        self.advance(p.ts_ns, out);
        let d = p.decoded;
        let (mut sport, mut dport) = (d.sport, d.dport);
        let (mut header_len, mut flags) = (d.l4_header_len, d.tcp_flags);
        match d.fragment {
            Fragment::No => {}
            Fragment::First { id } => {
                self.fragment_chain((d.src, d.dst, d.proto, id), sport, dport);
            }
            Fragment::Later { id, more } => {
                let k = (d.src, d.dst, d.proto, id);
                let Some(&(sp, dp, _)) = self.frags.get(&k) else {
                    self.counters.fragments_orphaned += 1;
                    return Err(SkipReason::Fragment);
                };
                if !more {
                    self.frags.remove(&k);
                }
                sport = sp;
                dport = dp;
                header_len = 0;
                flags = 0;
                self.counters.fragments_attributed += 1;
            }
        }
        let is_icmp = d.proto == 1 || d.proto == 58;
        let (kp_s, kp_d) = if is_icmp {
            // (type, counterpart type) for request/reply pairs, so both directions share a key.
            let (a, b, _one_way) =
                crate::community_id::icmp_ports(d.proto, sport as u8, dport as u8);
            (a, b)
        } else {
            (sport, dport)
        };
        let fwd_order = (d.src, kp_s) <= (d.dst, kp_d);
        let key = if fwd_order {
            FlowKey {
                lo_ip: d.src,
                hi_ip: d.dst,
                lo_port: kp_s,
                hi_port: kp_d,
                proto: d.proto,
                vlan: d.vlan,
            }
        } else {
            FlowKey {
                lo_ip: d.dst,
                hi_ip: d.src,
                lo_port: kp_d,
                hi_port: kp_s,
                proto: d.proto,
                vlan: d.vlan,
            }
        };
        let is_tcp = d.proto == 6;
        let syn_only = is_tcp && flags & (FLAG_SYN | FLAG_ACK) == FLAG_SYN;

        let mut idx = self.map.get(&key).copied();
        if let Some(i) = idx {
            let flow = self.slots[i as usize]
                .flow
                .as_ref()
                .expect("mapped slot holds a flow");
            let end = if flow.close.is_some() && syn_only {
                Some(EndReason::Reused)
            } else if p.ts_ns.saturating_sub(flow.first_ts_ns) > self.cfg.active_timeout_ns {
                Some(EndReason::Active)
            } else if p.ts_ns.saturating_sub(flow.last_ts_ns) > self.timeout_of(flow) {
                Some(EndReason::Idle)
            } else {
                None
            };
            if let Some(reason) = end {
                self.evict(i, reason, out);
                idx = None;
            }
        }
        let ts_us = p.ts_ns as f64 / 1000.0;
        let icmp = if is_icmp {
            Some((sport as u8, dport as u8))
        } else {
            None
        };
        let pf_for = |dir: Direction| PacketFeatures {
            ts_us,
            dir,
            payload_len: d.payload_len,
            header_len,
            flags,
            window: d.tcp_window,
            payload: d.payload,
            icmp,
        };
        let i = match idx {
            Some(i) => i,
            None => {
                let pf = pf_for(Direction::Forward);
                let flow = Flow {
                    key,
                    src_ip: d.src,
                    src_port: sport,
                    dst_ip: d.dst,
                    dst_port: dport,
                    tunnel: d.tunnel,
                    first_ts_ns: p.ts_ns,
                    last_ts_ns: p.ts_ns,
                    packets: [0; 2],
                    bytes: [0; 2],
                    first_offset: p.offset,
                    last_offset: p.offset,
                    fin: [false; 2],
                    close: None,
                    stats: FlowStats::new(d.proto, &pf),
                };
                if let Some(starts) = &mut self.starts {
                    starts.push(FlowStart {
                        offset: p.offset,
                        ts_ns: p.ts_ns,
                        src: d.src,
                        dst: d.dst,
                        proto: d.proto,
                        dport: if matches!(d.proto, 6 | 17 | 132) {
                            dport
                        } else {
                            0
                        },
                    });
                }
                let i = self.alloc(flow);
                self.map.insert(key, i);
                self.counters.flows += 1;
                self.counters.peak_open = self.counters.peak_open.max(self.map.len() as u64);
                self.link(i, if is_tcp { LIST_NEW_TCP } else { LIST_NEW });
                let flow = self.slots[i as usize]
                    .flow
                    .as_mut()
                    .expect("just allocated");
                Self::count(flow, 0, p, flags, self.cfg.tcp_close);
                self.after_packet(i);
                self.counters.packets += 1;
                if d.tunnel.is_some() {
                    self.counters.tunneled += 1;
                }
                return Ok(());
            }
        };
        let flow = self.slots[i as usize]
            .flow
            .as_mut()
            .expect("mapped slot holds a flow");
        let dir = if d.src == flow.src_ip && sport == flow.src_port {
            0
        } else {
            1
        };
        let pf = pf_for(if dir == 0 {
            Direction::Forward
        } else {
            Direction::Backward
        });
        flow.stats.add(&pf);
        Self::count(flow, dir, p, flags, self.cfg.tcp_close);
        self.after_packet(i);
        self.counters.packets += 1;
        if d.tunnel.is_some() {
            self.counters.tunneled += 1;
        }
        Ok(())
    }

    fn count(flow: &mut Flow, dir: usize, p: &PacketInfo<'_>, flags: u8, tcp_close: bool) {
        flow.packets[dir] += 1;
        flow.bytes[dir] += u64::from(p.wire_len);
        if p.ts_ns > flow.last_ts_ns {
            flow.last_ts_ns = p.ts_ns;
        }
        if p.offset > flow.last_offset {
            flow.last_offset = p.offset;
        }
        if tcp_close && flow.key.proto == 6 && flow.close.is_none() {
            if flags & FLAG_RST != 0 {
                flow.close = Some(EndReason::Rst);
            } else if flags & FLAG_FIN != 0 {
                flow.fin[dir] = true;
                if flow.fin[0] && flow.fin[1] {
                    flow.close = Some(EndReason::Fin);
                }
            }
        }
    }

    /// The list a flow belongs on: closed (TCP FIN/RST), unanswered, or open.
    fn list_of(f: &Flow) -> u8 {
        if f.close.is_some() {
            LIST_CLOSED
        } else if f.packets[1] == 0 {
            if f.key.proto == 6 {
                LIST_NEW_TCP
            } else {
                LIST_NEW
            }
        } else {
            LIST_OPEN
        }
    }

    /// How long the flow may stay silent before it ends.
    fn timeout_of(&self, f: &Flow) -> i64 {
        match Self::list_of(f) {
            LIST_CLOSED => self.cfg.closed_linger_ns,
            LIST_NEW => self.cfg.unanswered_timeout_ns,
            LIST_NEW_TCP => self.cfg.unanswered_tcp_timeout_ns,
            _ => self.cfg.idle_timeout_ns,
        }
    }

    /// Move the flow to the tail of its list.
    fn after_packet(&mut self, i: u32) {
        let list = self.slots[i as usize]
            .flow
            .as_ref()
            .map_or(LIST_OPEN, Self::list_of);
        self.unlink(i);
        self.link(i, list);
    }

    fn sweep(&mut self, out: &mut Vec<FlowRecord>) {
        for (list, timeout) in [
            (LIST_OPEN, self.cfg.idle_timeout_ns),
            (LIST_CLOSED, self.cfg.closed_linger_ns),
            (LIST_NEW, self.cfg.unanswered_timeout_ns),
            (LIST_NEW_TCP, self.cfg.unanswered_tcp_timeout_ns),
        ] {
            loop {
                let h = self.lists[list as usize].head;
                if h == NIL {
                    break;
                }
                let f = self.slots[h as usize]
                    .flow
                    .as_ref()
                    .expect("listed slot holds a flow");
                if self.now.saturating_sub(f.last_ts_ns) <= timeout {
                    break;
                }
                let reason = f.close.unwrap_or(EndReason::Idle);
                self.evict(h, reason, out);
            }
        }
    }

    /// End every open flow (end of capture). The table can be reused afterwards.
    pub fn finish(&mut self, out: &mut Vec<FlowRecord>) {
        // Oldest first, so output order is by last activity.
        for list in [LIST_CLOSED, LIST_NEW, LIST_NEW_TCP, LIST_OPEN] {
            while self.lists[list as usize].head != NIL {
                let h = self.lists[list as usize].head;
                let reason = self.slots[h as usize]
                    .flow
                    .as_ref()
                    .and_then(|f| f.close)
                    .unwrap_or(EndReason::EndOfCapture);
                self.evict(h, reason, out);
            }
        }
        self.frags.clear();
        self.frag_order.clear();
    }

    /// Remember a fragment chain's ports from its first fragment. When
    /// [`FlowConfig::max_fragment_chains`] are open, the oldest is forgotten (counted): a
    /// flood of first fragments that never complete pushes out only chains older than the
    /// flood's, never every chain at once.
    fn fragment_chain(&mut self, k: FragKey, sport: u16, dport: u16) {
        while self.frags.len() >= self.cfg.max_fragment_chains.max(1)
            && !self.frags.contains_key(&k)
        {
            let Some((old, seq)) = self.frag_order.pop_front() else {
                break;
            };
            if self.frags.get(&old).is_some_and(|v| v.2 == seq) {
                self.frags.remove(&old);
                self.counters.fragment_chains_evicted += 1;
            }
        }
        self.frag_seq += 1;
        self.frags.insert(k, (sport, dport, self.frag_seq));
        self.frag_order.push_back((k, self.frag_seq));
        // Stale entries (chains that ended) are dropped once they outnumber the live ones.
        if self.frag_order.len() > 2 * self.frags.len() + 1024 {
            let frags = &self.frags;
            self.frag_order
                .retain(|(k, seq)| frags.get(k).is_some_and(|v| v.2 == *seq));
        }
    }

    fn evict(&mut self, i: u32, reason: EndReason, out: &mut Vec<FlowRecord>) {
        self.unlink(i);
        let flow = self.slots[i as usize]
            .flow
            .take()
            .expect("evicting a live slot");
        self.free.push(i);
        self.map.remove(&flow.key);
        self.counters.by_proto[usize::from(flow.key.proto)] += 1;
        out.push(finish_flow(flow, reason));
    }

    fn alloc(&mut self, flow: Flow) -> u32 {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize].flow = Some(flow);
            i
        } else {
            self.slots.push(Slot {
                flow: Some(flow),
                prev: NIL,
                next: NIL,
                list: LIST_OPEN,
            });
            (self.slots.len() - 1) as u32
        }
    }

    fn link(&mut self, i: u32, list: u8) {
        let l = &mut self.lists[list as usize];
        let tail = l.tail;
        {
            let s = &mut self.slots[i as usize];
            s.prev = tail;
            s.next = NIL;
            s.list = list;
        }
        if tail == NIL {
            self.lists[list as usize].head = i;
        } else {
            self.slots[tail as usize].next = i;
        }
        self.lists[list as usize].tail = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, list) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next, s.list)
        };
        if prev == NIL {
            if self.lists[list as usize].head == i {
                self.lists[list as usize].head = next;
            }
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            if self.lists[list as usize].tail == i {
                self.lists[list as usize].tail = prev;
            }
        } else {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }
}

fn finish_flow(f: Flow, reason: EndReason) -> FlowRecord {
    let cid = community_id(f.src_ip, f.dst_ip, f.key.proto, f.src_port, f.dst_port);
    FlowRecord {
        community_id: cid,
        proto: f.key.proto,
        src_ip: f.src_ip,
        src_port: f.src_port,
        dst_ip: f.dst_ip,
        dst_port: f.dst_port,
        vlan: f.key.vlan,
        tunnel: f.tunnel,
        first_ts_ns: f.first_ts_ns,
        last_ts_ns: f.last_ts_ns,
        packets_fwd: f.packets[0],
        packets_bwd: f.packets[1],
        bytes_fwd: f.bytes[0],
        bytes_bwd: f.bytes[1],
        first_offset: f.first_offset,
        last_offset: f.last_offset,
        end_reason: reason,
        features: f.stats.vector(),
        signals: f.stats.signals(),
        behaviour: None,
    }
}

#[cfg(test)]
mod tests;
