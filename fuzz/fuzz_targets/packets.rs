//! Raw frames of every supported link type straight into the decoder and the flow table,
//! skipping the container so the fuzzer spends its time on headers. Input: records of
//! [link type selector: 1 byte][time step: 1 byte][length: 1 byte][frame bytes].
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_capture::{decode, linktype, Decode};
use weir_flow::{FlowConfig, FlowTable, PacketInfo};

const LINKTYPES: [u32; 9] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::LOOP,
    147, // unsupported: must be a clean skip
];

fuzz_target!(|data: &[u8]| {
    // Short timeouts so expiry paths run inside small inputs.
    let cfg = FlowConfig {
        idle_timeout_ns: 20_000_000_000,
        unanswered_timeout_ns: 7_000_000_000,
        unanswered_tcp_timeout_ns: 9_000_000_000,
        active_timeout_ns: 60_000_000_000,
        closed_linger_ns: 2_000_000_000,
        max_fragment_chains: 4,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg);
    let mut out = Vec::new();
    let (mut ts, mut rest, mut offset) = (1_000_000_000_000i64, data, 0u64);
    let (mut pushed, mut rejected) = (0u64, 0u64);
    while rest.len() >= 3 {
        let lt = LINKTYPES[usize::from(rest[0]) % LINKTYPES.len()];
        // Mostly forward in time, sometimes backwards (captures are not always sorted).
        ts += (i64::from(rest[1]) - 16) * 500_000_000;
        let len = usize::from(rest[2]).min(rest.len() - 3);
        let frame = &rest[3..3 + len];
        rest = &rest[3 + len..];
        offset += 3 + len as u64;
        if let Decode::Packet(d) = decode(lt, frame) {
            let info = PacketInfo { ts_ns: ts, wire_len: frame.len() as u32, offset, decoded: &d };
            match table.push(&info, &mut out) {
                Ok(()) => pushed += 1,
                Err(_) => rejected += 1,
            }
        }
    }
    table.finish(&mut out);
    assert_eq!(table.open_flows(), 0);
    let in_flows: u64 = out.iter().map(|f| f.packets_fwd + f.packets_bwd).sum();
    assert_eq!(in_flows, pushed, "every accepted packet is in exactly one flow ({rejected} rejected)");
    for f in &out {
        assert!(f.first_ts_ns <= f.last_ts_ns);
    }
});
