//! Writing PCAP: the file header and records, what a carved flow (`weir_pipeline::carve`)
//! and live capture (`weir edge run --interface`) write. Nanosecond timestamps, little-endian.

const PCAP_NS_MAGIC: u32 = 0xa1b2_3c4d;

/// A PCAP file header (nanosecond timestamps, snap length 256 KiB) for `linktype`.
pub fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&PCAP_NS_MAGIC.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&262_144u32.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

/// Append one PCAP record (after [`pcap_header`]): `data` as captured, `orig_len` on the wire.
pub fn pcap_record(out: &mut Vec<u8>, ts_ns: i64, data: &[u8], orig_len: u32) {
    let (s, ns) = (
        ts_ns.div_euclid(1_000_000_000),
        ts_ns.rem_euclid(1_000_000_000),
    );
    out.extend_from_slice(&(s as u32).to_le_bytes());
    out.extend_from_slice(&(ns as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&orig_len.to_le_bytes());
    out.extend_from_slice(data);
}
