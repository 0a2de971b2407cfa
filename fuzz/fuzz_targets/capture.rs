//! A whole capture file (PCAP or PCAPNG bytes) through the reader, the decoder and the flow
//! table, exactly as `weir flows` runs them. Must never panic, hang or read out of bounds;
//! every packet read is either in a flow or counted as skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_flow::{extract, ExtractOptions};

fuzz_target!(|data: &[u8]| {
    // Odd-length inputs also run the sharded path (reader thread + 2 flow-table threads).
    let opts = ExtractOptions {
        batch: 7,
        shards: 1 + data.len() % 2,
        ..ExtractOptions::default()
    };
    let mut flows = 0u64;
    let mut packets_in_flows = 0u64;
    if let Ok(s) = extract(
        data,
        &opts,
        |b| {
            flows += b.len() as u64;
            packets_in_flows += b.iter().map(|f| f.packets_fwd + f.packets_bwd).sum::<u64>();
        },
        |_| {},
    ) {
        assert_eq!(flows, s.flows, "every flow created is handed out");
        assert_eq!(packets_in_flows, s.packets_in_flows, "no packet lost between table and flows");
        assert_eq!(s.packets, s.packets_in_flows + s.skipped_total(), "every packet accounted for");
    }
});
