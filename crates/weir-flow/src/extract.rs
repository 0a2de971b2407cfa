//! Capture → flows, the library entry point of the flow stage.

use std::collections::BTreeMap;
use std::io::Read;

use weir_capture::{decode, CaptureError, CaptureReader, Decode, Format, SkipReason};

use crate::table::{FlowConfig, FlowRecord, FlowTable, PacketInfo};

/// Options of [`extract`].
#[derive(Clone, Copy, Debug)]
pub struct ExtractOptions {
    /// Flow table settings.
    pub flow: FlowConfig,
    /// Flows are handed to the sink in batches of about this many.
    pub batch: usize,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            flow: FlowConfig::default(),
            batch: 4096,
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
    /// Packets not turned into flows, by reason ([`SkipReason::name`]).
    pub skipped: BTreeMap<&'static str, u64>,
    /// Packets that were decapsulated from a tunnel.
    pub tunneled: u64,
    /// Non-first IP fragments attributed to a flow through their first fragment.
    pub fragments_attributed: u64,
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
/// few thousand packets.
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
    let mut rd = CaptureReader::new(reader)?;
    let mut table = FlowTable::new(opts.flow);
    let mut out: Vec<FlowRecord> = Vec::with_capacity(opts.batch);
    let mut sum = Summary::default();
    let mut skipped = [0u64; SkipReason::ALL.len()];
    let mut last_ts = 0i64;
    loop {
        let pkt = match rd.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                sum.error = Some(e);
                break;
            }
        };
        sum.packets += 1;
        sum.captured_bytes += pkt.data.len() as u64;
        // Simple Packet Blocks carry no timestamp: they inherit the previous packet's.
        let ts = if pkt.ts_ns == 0 { last_ts } else { pkt.ts_ns };
        last_ts = ts;
        match decode(pkt.linktype, pkt.data) {
            Decode::Packet(d) => {
                let info = PacketInfo {
                    ts_ns: ts,
                    wire_len: pkt.orig_len.max(pkt.data.len() as u32),
                    offset: pkt.offset,
                    decoded: &d,
                };
                if let Err(r) = table.push(&info, &mut out) {
                    skipped[r as usize] += 1;
                }
            }
            Decode::Skip(r) => skipped[r as usize] += 1,
        }
        if out.len() >= opts.batch {
            sink(std::mem::replace(&mut out, Vec::with_capacity(opts.batch)));
        }
        if sum.packets.is_multiple_of(8192) {
            progress(rd.position());
        }
    }
    table.finish(&mut out);
    if !out.is_empty() {
        sink(out);
    }
    let c = table.counters();
    sum.format = Some(rd.format());
    sum.file_bytes = rd.position();
    sum.flows = c.flows;
    sum.packets_in_flows = c.packets;
    sum.tunneled = c.tunneled;
    sum.fragments_attributed = c.fragments_attributed;
    sum.peak_open_flows = c.peak_open;
    sum.bad_blocks = rd.bad_blocks;
    for (i, r) in SkipReason::ALL.iter().enumerate() {
        if skipped[i] > 0 {
            sum.skipped.insert(r.name(), skipped[i]);
        }
    }
    progress(sum.file_bytes);
    Ok(sum)
}
