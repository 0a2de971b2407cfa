//! Capture → flows, the library entry point of the flow stage.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use weir_capture::{
    decode, CaptureError, CaptureReader, Decode, Decoded, Format, Packet, SkipReason,
};

use crate::context::{ContextTracker, FlowStart};
use crate::table::{FlowConfig, FlowCounters, FlowRecord, FlowTable, PacketInfo};

/// Options of [`extract`].
#[derive(Clone, Copy, Debug)]
pub struct ExtractOptions {
    /// Flow table settings.
    pub flow: FlowConfig,
    /// Flows are handed to the sink in batches of about this many.
    pub batch: usize,
    /// Flow-table shards, each on its own thread (1 = everything on the calling thread).
    /// Packets are sharded by IP address pair, so a flow and all its fragments stay in one
    /// shard; the output is the same set of flows whatever the count, in a deterministic order.
    pub shards: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            flow: FlowConfig::default(),
            batch: 4096,
            shards: 1,
        }
    }
}

/// What happened while reading a capture.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Container format.
    pub format: Option<Format>,
    /// Packets read from the file.
    pub packets: u64,
    /// Packets that joined a flow.
    pub packets_in_flows: u64,
    /// Captured bytes of all packets.
    pub captured_bytes: u64,
    /// Bytes of the file consumed.
    pub file_bytes: u64,
    /// Flows produced.
    pub flows: u64,
    /// Flows produced, by IP protocol number.
    pub flows_by_proto: BTreeMap<u8, u64>,
    /// Packets not turned into flows, by reason ([`SkipReason::name`]).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Packets that were decapsulated from a tunnel.
    pub tunneled: u64,
    /// Non-first IP fragments attributed to a flow through their first fragment.
    pub fragments_attributed: u64,
    /// Fragment chains forgotten (oldest first) because too many were open at once: a
    /// fragment flood; their later fragments are counted as skipped `fragment`.
    pub fragment_chains_evicted: u64,
    /// Highest number of flows open at once.
    pub peak_open_flows: u64,
    /// PCAPNG packet blocks that referred to no known interface.
    pub bad_blocks: u64,
    /// The damage that ended reading early, if any (all flows before it are kept).
    pub error: Option<CaptureError>,
}

impl Summary {
    /// Total packets skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Read a capture, assemble flows and compute their features. Finished flows are handed to
/// `sink` in batches as they end; `progress` is called with the bytes consumed so far every
/// few thousand packets. Both callbacks run on the calling thread.
///
/// Returns `Err` only when the file could not be opened as a capture at all (not a capture,
/// empty, bad header). Damage later in the file is reported in [`Summary::error`] after every
/// flow read up to it has been handed out.
pub fn extract<R: Read + Send>(
    reader: R,
    opts: &ExtractOptions,
    mut sink: impl FnMut(Vec<FlowRecord>),
    mut progress: impl FnMut(u64),
) -> Result<Summary, CaptureError> {
    let rd = CaptureReader::new(reader)?;
    if opts.shards <= 1 {
        return Ok(extract_serial(rd, opts, sink, progress));
    }
    Ok(extract_sharded(rd, opts, &mut sink, &mut progress))
}

/// Everything on one thread: read, decode, flow table.
fn extract_serial(
    mut rd: CaptureReader<'_>,
    opts: &ExtractOptions,
    mut sink: impl FnMut(Vec<FlowRecord>),
    mut progress: impl FnMut(u64),
) -> Summary {
    let mut shard = Shard::new(opts, 0, 1);
    let mut ctx = ContextTracker::new();
    let mut sum = Summary::default();
    let mut last_ts = 0i64;
    while let Some((pkt, ts, wire_len)) = next_counted(&mut rd, &mut sum, &mut last_ts) {
        shard.packet(pkt.linktype, pkt.data, ts, wire_len, pkt.offset);
        for s in shard.table.drain_starts() {
            ctx.start(&s);
        }
        if shard.out.len() >= opts.batch {
            let mut flows = std::mem::replace(&mut shard.out, Vec::with_capacity(opts.batch));
            ctx.fill(&mut flows);
            sink(flows);
        }
        if sum.packets.is_multiple_of(8192) {
            progress(rd.position());
        }
    }
    let (mut flows, counters, skipped) = shard.finish();
    if !flows.is_empty() {
        ctx.fill(&mut flows);
        sink(flows);
    }
    sum.add_shard(&counters, &skipped);
    sum.finish_reading(&rd);
    progress(sum.file_bytes);
    sum
}

/// The next packet with its timestamp and wire length, counted in `sum`. `None` at the end
/// of the file, or at damage (recorded in `sum.error`).
#[inline]
fn next_counted<'a>(
    rd: &'a mut CaptureReader<'_>,
    sum: &mut Summary,
    last_ts: &mut i64,
) -> Option<(Packet<'a>, i64, u32)> {
    let pkt = match rd.next_packet() {
        Ok(Some(p)) => p,
        Ok(None) => return None,
        Err(e) => {
            sum.error = Some(e);
            return None;
        }
    };
    sum.packets += 1;
    sum.captured_bytes += pkt.data.len() as u64;
    // Simple Packet Blocks carry no timestamp: they inherit the previous packet's.
    let ts = if pkt.ts_ns == 0 { *last_ts } else { pkt.ts_ns };
    *last_ts = ts;
    let wire_len = pkt.orig_len.max(pkt.data.len() as u32);
    Some((pkt, ts, wire_len))
}

/// One flow table and the packets that belong to it.
struct Shard {
    table: FlowTable,
    out: Vec<FlowRecord>,
    skipped: [u64; SkipReason::ALL.len()],
    id: usize,
    n: usize,
}

impl Shard {
    fn new(opts: &ExtractOptions, id: usize, n: usize) -> Self {
        let mut table = FlowTable::new(opts.flow);
        table.record_starts();
        Shard {
            table,
            out: Vec::with_capacity(opts.batch),
            skipped: [0; SkipReason::ALL.len()],
            id,
            n,
        }
    }

    /// Decode one packet and, when it belongs to this shard, add it to the table. Packets that
    /// do not decode are counted by shard 0 only.
    fn packet(&mut self, linktype: u32, data: &[u8], ts_ns: i64, wire_len: u32, offset: u64) {
        match decode(linktype, data) {
            Decode::Packet(d) => {
                if self.n > 1 && shard_of(&d, self.n) != self.id {
                    self.table.advance(ts_ns, &mut self.out);
                    return;
                }
                let info = PacketInfo {
                    ts_ns,
                    wire_len,
                    offset,
                    decoded: &d,
                };
                if let Err(r) = self.table.push(&info, &mut self.out) {
                    self.skipped[r as usize] += 1;
                }
            }
            Decode::Skip(r) => {
                if self.id == 0 {
                    self.skipped[r as usize] += 1;
                }
            }
        }
    }

    fn finish(mut self) -> (Vec<FlowRecord>, FlowCounters, [u64; SkipReason::ALL.len()]) {
        self.table.finish(&mut self.out);
        (self.out, self.table.counters(), self.skipped)
    }
}

/// The shard of a packet: a symmetric hash of its address pair, protocol and VLAN, so both
/// directions of a flow, and every fragment of a packet, land in the same shard.
fn shard_of(d: &Decoded<'_>, n: usize) -> usize {
    fn fold(a: IpAddr) -> u64 {
        match a {
            IpAddr::V4(v) => u64::from(u32::from(v)),
            IpAddr::V6(v) => {
                let x = u128::from(v);
                (x as u64) ^ ((x >> 64) as u64)
            }
        }
    }
    let h = (fold(d.src) ^ fold(d.dst) ^ (u64::from(d.proto) << 32) ^ u64::from(d.vlan))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) as usize) % n
}

impl Summary {
    fn add_shard(&mut self, c: &FlowCounters, skipped: &[u64; SkipReason::ALL.len()]) {
        self.flows += c.flows;
        for (proto, &n) in c.by_proto.iter().enumerate() {
            if n > 0 {
                *self.flows_by_proto.entry(proto as u8).or_default() += n;
            }
        }
        self.packets_in_flows += c.packets;
        self.tunneled += c.tunneled;
        self.fragments_attributed += c.fragments_attributed;
        self.fragment_chains_evicted += c.fragment_chains_evicted;
        // The sum of the shards' peaks: an upper bound of the flows open at once.
        self.peak_open_flows += c.peak_open;
        for (i, r) in SkipReason::ALL.iter().enumerate() {
            if skipped[i] > 0 {
                *self.skipped.entry(r.name()).or_default() += skipped[i];
            }
        }
    }

    fn finish_reading(&mut self, rd: &CaptureReader<'_>) {
        self.format = Some(rd.format());
        self.file_bytes = rd.position();
        self.bad_blocks = rd.bad_blocks;
    }
}

/// What a shard hands the merge after each chunk: the file position, the flows that started
/// and the flows that ended.
type ShardOutput = (u64, Vec<FlowStart>, Vec<FlowRecord>);

/// Packets copied out of the reader's buffer, handed to every shard.
#[derive(Default)]
struct Chunk {
    data: Vec<u8>,
    /// (start in `data`, length, link type, timestamp, wire length, file offset)
    packets: Vec<(u32, u32, u32, i64, u32, u64)>,
    /// File position after the last packet.
    position: u64,
}

const CHUNK_BYTES: usize = 1 << 20;

/// Reader thread → chunks → one thread per shard → flows merged in chunk order on the calling
/// thread. Every shard decodes every packet (cheap) and keeps those of its address pairs.
fn extract_sharded(
    mut rd: CaptureReader<'_>,
    opts: &ExtractOptions,
    sink: &mut dyn FnMut(Vec<FlowRecord>),
    progress: &mut dyn FnMut(u64),
) -> Summary {
    let n = opts.shards;
    let (free_tx, free_rx) = bounded::<Chunk>(4 * n + 4);
    std::thread::scope(|s| {
        let mut chunk_txs: Vec<Sender<Arc<Chunk>>> = Vec::with_capacity(n);
        let mut flow_rxs: Vec<Receiver<ShardOutput>> = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        for id in 0..n {
            let (ctx, crx) = bounded::<Arc<Chunk>>(4);
            let (ftx, frx) = bounded::<ShardOutput>(4);
            chunk_txs.push(ctx);
            flow_rxs.push(frx);
            let free_tx = free_tx.clone();
            let opts = *opts;
            workers.push(s.spawn(move || {
                let mut shard = Shard::new(&opts, id, n);
                for chunk in crx {
                    for &(start, len, lt, ts, wire, off) in &chunk.packets {
                        let data = &chunk.data[start as usize..(start + len) as usize];
                        shard.packet(lt, data, ts, wire, off);
                    }
                    let position = chunk.position;
                    if let Some(mut c) = Arc::into_inner(chunk) {
                        c.data.clear();
                        c.packets.clear();
                        let _ = free_tx.try_send(c);
                    }
                    let flows = std::mem::take(&mut shard.out);
                    let starts = shard.table.drain_starts().collect();
                    if ftx.send((position, starts, flows)).is_err() {
                        return None;
                    }
                }
                let (flows, counters, skipped) = shard.finish();
                let _ = ftx.send((u64::MAX, Vec::new(), flows));
                Some((counters, skipped))
            }));
        }
        drop(free_tx);
        let reader = s.spawn(move || {
            let mut sum = Summary::default();
            let mut last_ts = 0i64;
            let mut chunk = Chunk::default();
            let send = |c: Chunk| {
                let c = Arc::new(c);
                chunk_txs.iter().all(|tx| tx.send(Arc::clone(&c)).is_ok())
            };
            while let Some((pkt, ts, wire)) = next_counted(&mut rd, &mut sum, &mut last_ts) {
                chunk.packets.push((
                    chunk.data.len() as u32,
                    pkt.data.len() as u32,
                    pkt.linktype,
                    ts,
                    wire,
                    pkt.offset,
                ));
                chunk.data.extend_from_slice(pkt.data);
                if chunk.data.len() >= CHUNK_BYTES {
                    chunk.position = rd.position();
                    let next = free_rx.try_recv().unwrap_or_else(|_| Chunk {
                        data: Vec::with_capacity(CHUNK_BYTES + 65_536),
                        ..Chunk::default()
                    });
                    if !send(std::mem::replace(&mut chunk, next)) {
                        break;
                    }
                }
            }
            chunk.position = rd.position();
            if !chunk.packets.is_empty() {
                send(chunk);
            }
            sum.finish_reading(&rd);
            sum
        });
        // Merge on this thread: chunk by chunk, shard 0's flows first, so the order of the
        // output depends only on the input. The chunk's flow starts go to the context tracker
        // in packet order before its flows are filled in (a flow never ends before it starts).
        let mut ctx = ContextTracker::new();
        let mut starts: Vec<FlowStart> = Vec::new();
        let mut out: Vec<FlowRecord> = Vec::with_capacity(opts.batch);
        let mut open = n;
        while open > 0 {
            let mut position = 0;
            let done = out.len();
            for rx in &flow_rxs {
                match rx.recv() {
                    Ok((pos, s, flows)) => {
                        position = pos;
                        starts.extend(s);
                        out.extend(flows);
                        if pos == u64::MAX {
                            open -= 1;
                        }
                    }
                    Err(_) => open = 0,
                }
            }
            starts.sort_unstable_by_key(|s| s.offset);
            for s in starts.drain(..) {
                ctx.start(&s);
            }
            ctx.fill(&mut out[done..]);
            if out.len() >= opts.batch {
                sink(std::mem::replace(&mut out, Vec::with_capacity(opts.batch)));
            }
            if position != u64::MAX {
                progress(position);
            }
        }
        let mut sum = reader.join().expect("reader thread does not panic");
        for w in workers {
            if let Some((counters, skipped)) = w.join().expect("shard thread does not panic") {
                sum.add_shard(&counters, &skipped);
            }
        }
        if !out.is_empty() {
            sink(out);
        }
        progress(sum.file_bytes);
        sum
    })
}
