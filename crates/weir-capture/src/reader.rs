//! Streaming capture reader: PCAP (both byte orders, µs/ns) and PCAPNG (several sections,
//! several interfaces with their own link types and timestamp resolutions).
//!
//! Memory is bounded by the read buffer (1 MiB, grown up to [`MAX_RECORD`] for one oversized
//! record), whatever the file size. The reader never panics on bad input: a damaged file ends
//! the stream with a [`CaptureError`] that says what was wrong and at which byte offset, and
//! every packet before the damage has already been handed out.

use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use crate::error::CaptureError;

/// Initial read buffer size.
pub const BUFFER_SIZE: usize = 1 << 20;
/// The largest single record (PCAP record or PCAPNG block) the reader accepts.
pub const MAX_RECORD: usize = 16 << 20;

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format.
    Pcap,
    /// PCAP Next Generation.
    PcapNg,
}

/// One captured packet, borrowed from the reader's buffer until the next call.
#[derive(Debug)]
pub struct Packet<'a> {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Link type of the interface the packet was captured on (LINKTYPE_* value).
    pub linktype: u32,
    /// Captured bytes (may be shorter than `orig_len` when the capture used a snap length).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// Byte offset of this packet's record (PCAP record header or PCAPNG block) in the file.
    pub offset: u64,
    /// Length of the whole record in the file (header + data + padding), so that
    /// `file[offset..offset + record_len]` is exactly this packet's record.
    pub record_len: u32,
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    /// Timestamp units per second.
    ts_per_sec: u64,
    ts_offset_s: i64,
}

/// Streaming reader over any capture format. Use [`CaptureReader::next_packet`] in a loop.
pub struct CaptureReader<'r> {
    inner: Box<dyn PcapReaderIterator + Send + 'r>,
    format: Format,
    /// PCAP: the file's link type and timestamp resolution; PCAPNG: interfaces of the current section.
    legacy: Option<Interface>,
    interfaces: Vec<Interface>,
    pending_consume: usize,
    done: bool,
    /// Packet blocks that could not be attributed (e.g. an EPB naming an unknown interface).
    pub bad_blocks: u64,
}

fn pcap_err_msg(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::Eof => "end of file".into(),
        PcapError::BufferTooSmall => "record larger than the read buffer".into(),
        PcapError::UnexpectedEof => "file ends in the middle of a record (truncated)".into(),
        PcapError::ReadError => "read error".into(),
        PcapError::Incomplete(_) => "incomplete record".into(),
        PcapError::HeaderNotRecognized => "not a PCAP or PCAPNG file".into(),
        PcapError::NomError(_, kind) => format!("malformed record ({kind:?})"),
        PcapError::OwnedNomError(_, kind) => format!("malformed record ({kind:?})"),
    }
}

impl<'r> CaptureReader<'r> {
    /// Open a capture from any byte stream. Detects PCAP vs PCAPNG from the first bytes.
    pub fn new<R: Read + Send + 'r>(reader: R) -> Result<Self, CaptureError> {
        let inner = match create_reader(BUFFER_SIZE, reader) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(CaptureError::Empty),
            Err(PcapError::HeaderNotRecognized) => return Err(CaptureError::NotACapture),
            Err(PcapError::ReadError) => return Err(CaptureError::Io("read failed".into())),
            Err(e) => return Err(CaptureError::BadHeader(pcap_err_msg(&e))),
        };
        // create_reader hands back either reader; we find out which from the first block.
        Ok(CaptureReader {
            inner,
            format: Format::Pcap,
            legacy: None,
            interfaces: Vec::new(),
            pending_consume: 0,
            done: false,
            bad_blocks: 0,
        })
    }

    /// The container format (known after the first call to `next_packet`).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes of the file consumed so far (the offset of the next record).
    pub fn position(&self) -> u64 {
        (self.inner.consumed() + self.pending_consume) as u64
    }

    /// The next packet, `Ok(None)` at a clean end of file, or an error that ends the stream
    /// (every packet before it has been returned). After an error, further calls return `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        if self.pending_consume > 0 {
            self.inner.consume(self.pending_consume);
            self.pending_consume = 0;
        }
        if self.done {
            return Ok(None);
        }
        // Loop over non-packet blocks and refills. A packet is parsed once; its data is handed
        // out as a range of the buffer once the parse's borrow has ended.
        loop {
            let offset = self.inner.consumed() as u64;
            // Packet data is returned as a range of the reader's buffer, found from this base.
            let base = self.inner.data().as_ptr() as usize;
            let legacy = self.legacy;
            let step = match self.inner.next() {
                Ok((len, block)) => match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        self.format = Format::Pcap;
                        self.legacy = Some(Interface {
                            linktype: h.network.0 as u32,
                            ts_per_sec: if h.is_nanosecond_precision() {
                                1_000_000_000
                            } else {
                                1_000_000
                            },
                            ts_offset_s: i64::from(h.thiszone),
                        });
                        Step::Skip(len)
                    }
                    PcapBlockOwned::Legacy(b) => {
                        let iface = legacy.unwrap_or(Interface {
                            linktype: 1,
                            ts_per_sec: 1_000_000,
                            ts_offset_s: 0,
                        });
                        let frac = if iface.ts_per_sec == 1_000_000_000 {
                            i64::from(b.ts_usec)
                        } else {
                            i64::from(b.ts_usec) * 1000
                        };
                        Step::Packet(Found {
                            len,
                            ts_ns: (i64::from(b.ts_sec) + iface.ts_offset_s) * 1_000_000_000 + frac,
                            linktype: iface.linktype,
                            data: span(base, b.data),
                            orig_len: b.origlen,
                        })
                    }
                    PcapBlockOwned::NG(b) => {
                        self.format = Format::PcapNg;
                        match b {
                            Block::SectionHeader(_) => {
                                self.interfaces.clear();
                                Step::Skip(len)
                            }
                            Block::InterfaceDescription(idb) => {
                                let ts_per_sec = idb.ts_resolution().unwrap_or(0);
                                self.interfaces.push(Interface {
                                    linktype: idb.linktype.0 as u32,
                                    ts_per_sec,
                                    ts_offset_s: idb.ts_offset(),
                                });
                                Step::Skip(len)
                            }
                            Block::EnhancedPacket(epb) => {
                                if let Some(iface) = self.interfaces.get(epb.if_id as usize) {
                                    let raw =
                                        (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                    let n = (epb.caplen as usize).min(epb.data.len());
                                    Step::Packet(Found {
                                        len,
                                        ts_ns: ts_to_ns(raw, iface.ts_per_sec, iface.ts_offset_s),
                                        linktype: iface.linktype,
                                        data: span(base, &epb.data[..n]),
                                        orig_len: epb.origlen,
                                    })
                                } else {
                                    self.bad_blocks += 1;
                                    Step::Skip(len)
                                }
                            }
                            Block::SimplePacket(spb) => {
                                if let Some(iface) = self.interfaces.first() {
                                    let n = (spb.origlen as usize).min(spb.data.len());
                                    Step::Packet(Found {
                                        len,
                                        ts_ns: 0,
                                        linktype: iface.linktype,
                                        data: span(base, &spb.data[..n]),
                                        orig_len: spb.origlen,
                                    })
                                } else {
                                    self.bad_blocks += 1;
                                    Step::Skip(len)
                                }
                            }
                            _ => Step::Skip(len),
                        }
                    }
                },
                Err(PcapError::Eof) => Step::End(None),
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(PcapError::UnexpectedEof) => {
                    Step::End(Some(CaptureError::Truncated { offset }))
                }
                Err(e) => Step::End(Some(CaptureError::Malformed {
                    offset,
                    reason: pcap_err_msg(&e),
                })),
            };
            match step {
                Step::Skip(len) => {
                    self.inner.consume(len);
                }
                Step::Refill => {
                    let before = self.inner.data().len();
                    if let Err(e) = self.inner.refill() {
                        self.done = true;
                        return Err(CaptureError::Io(pcap_err_msg(&e)));
                    }
                    if self.inner.reader_exhausted() && self.inner.data().len() == before {
                        // Nothing more will come: the last record is cut off.
                        self.done = true;
                        if before == 0 {
                            return Ok(None);
                        }
                        return Err(CaptureError::Truncated { offset });
                    }
                }
                Step::Grow => {
                    let cap = self.inner.data().len().max(BUFFER_SIZE) * 2;
                    if cap > MAX_RECORD || !self.inner.grow(cap) {
                        self.done = true;
                        return Err(CaptureError::Malformed {
                            offset,
                            reason: format!(
                                "record larger than {} MiB: corrupt length field",
                                MAX_RECORD >> 20
                            ),
                        });
                    }
                    if let Err(e) = self.inner.refill() {
                        self.done = true;
                        return Err(CaptureError::Io(pcap_err_msg(&e)));
                    }
                }
                Step::End(err) => {
                    self.done = true;
                    return match err {
                        None => Ok(None),
                        Some(e) => Err(e),
                    };
                }
                Step::Packet(f) => {
                    self.pending_consume = f.len;
                    let data = self.inner.data().get(f.data.0..f.data.1).unwrap_or(&[]);
                    return Ok(Some(Packet {
                        ts_ns: f.ts_ns,
                        linktype: f.linktype,
                        data,
                        orig_len: f.orig_len,
                        offset,
                        record_len: f.len as u32,
                    }));
                }
            }
        }
    }
}

/// A packet record found at the head of the buffer: its fields, and where its data lies in
/// the buffer (as a range, so the borrow of the parse can end before the packet is returned).
struct Found {
    len: usize,
    ts_ns: i64,
    linktype: u32,
    data: (usize, usize),
    orig_len: u32,
}

/// The range of `part` within the buffer that starts at address `base`.
fn span(base: usize, part: &[u8]) -> (usize, usize) {
    let start = (part.as_ptr() as usize).wrapping_sub(base);
    (start, start.wrapping_add(part.len()))
}

enum Step {
    Skip(usize),
    Packet(Found),
    Refill,
    Grow,
    End(Option<CaptureError>),
}

/// Convert a raw PCAPNG timestamp to nanoseconds since the epoch without overflow.
fn ts_to_ns(raw: u64, ts_per_sec: u64, offset_s: i64) -> i64 {
    if ts_per_sec == 0 {
        return 0;
    }
    let ns = (u128::from(raw) * 1_000_000_000u128) / u128::from(ts_per_sec);
    let ns = i64::try_from(ns).unwrap_or(i64::MAX);
    ns.saturating_add(offset_s.saturating_mul(1_000_000_000))
}

/// The LINKTYPE_* values the decoder understands.
pub mod linktype {
    /// BSD loopback (host byte order family).
    pub const NULL: u32 = 0;
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// Raw IP (DLT_RAW on some BSDs).
    pub const RAW_BSD: u32 = 12;
    /// Raw IP (DLT_RAW on OpenBSD).
    pub const RAW_OPENBSD: u32 = 14;
    /// Raw IP.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback (network byte order family).
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_header(magic: u32, linktype: u32, be: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| {
            if be {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        };
        w32(&mut v, magic);
        if be {
            v.extend_from_slice(&2u16.to_be_bytes());
            v.extend_from_slice(&4u16.to_be_bytes());
        } else {
            v.extend_from_slice(&2u16.to_le_bytes());
            v.extend_from_slice(&4u16.to_le_bytes());
        }
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, linktype);
        v
    }

    fn pcap_record(v: &mut Vec<u8>, be: bool, sec: u32, frac: u32, data: &[u8]) {
        for x in [sec, frac, data.len() as u32, data.len() as u32] {
            if be {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        }
        v.extend_from_slice(data);
    }

    fn read_all(bytes: &[u8]) -> (Vec<(i64, u32, usize, u64)>, Option<CaptureError>) {
        let mut r = CaptureReader::new(bytes).unwrap();
        let mut out = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some(p)) => out.push((p.ts_ns, p.linktype, p.data.len(), p.offset)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        for (magic, be, ns) in [
            (0xa1b2c3d4u32, false, false),
            (0xa1b2c3d4, true, false),
            (0xa1b23c4d, false, true),
            (0xa1b23c4d, true, true),
        ] {
            let mut f = pcap_header(magic, 101, be);
            pcap_record(&mut f, be, 10, 5, &[0x45; 20]);
            pcap_record(&mut f, be, 11, 7, &[0x45; 30]);
            let (pkts, err) = read_all(&f);
            assert!(err.is_none(), "{err:?}");
            let unit = if ns { 1 } else { 1000 };
            assert_eq!(
                pkts,
                vec![
                    (10_000_000_000 + 5 * unit, 101, 20, 24),
                    (11_000_000_000 + 7 * unit, 101, 30, 24 + 16 + 20)
                ]
            );
        }
    }

    #[test]
    fn truncated_pcap_keeps_what_was_read() {
        let mut f = pcap_header(0xa1b2c3d4, 1, false);
        pcap_record(&mut f, false, 1, 0, &[0u8; 60]);
        pcap_record(&mut f, false, 2, 0, &[0u8; 60]);
        f.truncate(f.len() - 10);
        let (pkts, err) = read_all(&f);
        assert_eq!(pkts.len(), 1);
        assert!(
            matches!(err, Some(CaptureError::Truncated { offset: 100 })),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_not_a_capture() {
        assert!(matches!(
            CaptureReader::new(&b"hello world, not a capture at all"[..]),
            Err(CaptureError::NotACapture)
        ));
        assert!(matches!(
            CaptureReader::new(&b""[..]),
            Err(CaptureError::Empty)
        ));
    }

    #[test]
    fn huge_caplen_is_an_error_not_an_allocation() {
        let mut f = pcap_header(0xa1b2c3d4, 1, false);
        pcap_record(&mut f, false, 1, 0, &[0u8; 60]);
        for x in [2u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
            f.extend_from_slice(&x.to_le_bytes());
        }
        f.extend_from_slice(&[0u8; 100]);
        let (pkts, err) = read_all(&f);
        assert_eq!(pkts.len(), 1);
        assert!(err.is_some());
    }

    #[test]
    fn pcapng_ts_conversion() {
        assert_eq!(ts_to_ns(1_500_000, 1_000_000, 0), 1_500_000_000);
        assert_eq!(ts_to_ns(3, 1_000_000_000, 2), 2_000_000_003);
        assert_eq!(ts_to_ns(u64::MAX, 1, 0), i64::MAX);
        assert_eq!(ts_to_ns(5, 0, 0), 0);
    }
}
