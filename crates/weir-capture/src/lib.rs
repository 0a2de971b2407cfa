//! # weir-capture
//!
//! Owns: reading capture files and decoding packets. Must not depend on: any other weir crate;
//! no I/O beyond the reader it is given.
//!
//! Streaming capture reading and L2–L4 decoding, the first stage of weir's data path:
//!
//! ```text
//! bytes ──CaptureReader──▶ Packet (ts, link type, bytes, file offset) ──decode──▶ Decoded (5-tuple, TCP flags, payload)
//! ```
//!
//! This crate does no I/O beyond the [`std::io::Read`] it is given, spawns no threads and
//! never panics on malformed input: bad packets come back as a [`SkipReason`], a damaged file
//! ends the stream with a [`CaptureError`] carrying the byte offset of the damage.
//!
//! ```
//! use weir_capture::{decode, CaptureReader, Decode};
//! // A one-packet PCAP (raw IPv4 link type) holding a UDP datagram 10.0.0.1:1234 → 10.0.0.2:53.
//! let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0];
//! let ip = [0x45, 0, 0, 29, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
//!           0x04, 0xd2, 0, 53, 0, 9, 0, 0, b'x'];
//! for v in [1u32, 0, ip.len() as u32, ip.len() as u32] { file.extend_from_slice(&v.to_le_bytes()); }
//! file.extend_from_slice(&ip);
//!
//! let mut reader = CaptureReader::new(&file[..]).unwrap();
//! let packet = reader.next_packet().unwrap().unwrap();
//! match decode(packet.linktype, packet.data) {
//!     Decode::Packet(p) => {
//!         assert_eq!((p.sport, p.dport, p.proto), (1234, 53, 17));
//!         assert_eq!(p.payload, b"x");
//!     }
//!     Decode::Skip(reason) => panic!("{reason:?}"),
//! }
//! assert!(reader.next_packet().unwrap().is_none());
//! ```
#![warn(missing_docs)]

mod decode;
mod error;
mod reader;
mod writer;

pub use decode::{
    decode, Decode, Decoded, Fragment, SkipReason, Tunnel, FLAG_ACK, FLAG_CWR, FLAG_ECE, FLAG_FIN,
    FLAG_PSH, FLAG_RST, FLAG_SYN, FLAG_URG,
};
pub use error::CaptureError;
pub use reader::{linktype, CaptureReader, Format, Packet, BUFFER_SIZE, MAX_RECORD};
pub use writer::{pcap_header, pcap_record};
