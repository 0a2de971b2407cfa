//! Errors of the capture layer. Each one says what was wrong and, where it applies, the byte
//! offset in the file, so a user can look at the damage with any hex viewer.

/// Why a capture could not be (fully) read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    /// The input is empty.
    #[error("the file is empty")]
    Empty,
    /// The first bytes are neither a PCAP nor a PCAPNG header.
    #[error("not a PCAP or PCAPNG file (unrecognised magic number); weir reads libpcap .pcap and .pcapng captures")]
    NotACapture,
    /// The file header could be recognised but not parsed.
    #[error("bad capture header: {0}")]
    BadHeader(String),
    /// The file ends in the middle of a record.
    #[error("truncated: the file ends inside the record at byte {offset}; every packet before it was read")]
    Truncated {
        /// Offset of the incomplete record.
        offset: u64,
    },
    /// A record could not be parsed; nothing after it can be trusted.
    #[error("malformed record at byte {offset}: {reason}; every packet before it was read")]
    Malformed {
        /// Offset of the bad record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The underlying reader failed.
    #[error("I/O error while reading the capture: {0}")]
    Io(String),
}
