//! A flow's packets cut out of its capture: what the web app's "download PCAP" serves. The
//! result rows keep the byte offsets of each flow's first and last packet record
//! (`first_offset`, `last_offset`); the capture is read up to the last one, and the packets
//! between them whose addresses, ports and protocol are the flow's (either direction) are
//! written as a PCAP (nanosecond timestamps) that Wireshark and tshark open.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use weir_capture::{decode, pcap_header, pcap_record, CaptureReader, Decode, Fragment};

use crate::{PipelineError, Status, Store, StoreFault};

/// What identifies a flow's packets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowKey {
    /// IP protocol number.
    pub proto: u8,
    /// Initiator address and port.
    pub src: (IpAddr, u16),
    /// Responder address and port.
    pub dst: (IpAddr, u16),
    /// Byte offset of the flow's first packet record in the capture.
    pub first_offset: u64,
    /// Byte offset of its last packet record.
    pub last_offset: u64,
}

/// A carved PCAP.
#[derive(Debug)]
pub struct Carved {
    /// The PCAP file.
    pub pcap: Vec<u8>,
    /// Packets in it.
    pub packets: u64,
}

/// Why packets could not be cut out.
#[derive(Debug, thiserror::Error)]
pub enum CarveError {
    /// The capture is not where the status says, or changed since it was analyzed.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] PipelineError),
    /// The capture could not be read up to the flow's last packet.
    #[error("reading the capture: {0}")]
    Read(String),
}

impl FlowKey {
    fn holds(&self, d: &weir_capture::Decoded<'_>) -> bool {
        if d.proto != self.proto {
            return false;
        }
        let (a, b) = ((d.src, d.sport), (d.dst, d.dport));
        if matches!(d.fragment, Fragment::Later { .. }) {
            // No transport header: the addresses and protocol are all there is.
            return (d.src == self.src.0 && d.dst == self.dst.0)
                || (d.src == self.dst.0 && d.dst == self.src.0);
        }
        (a == self.src && b == self.dst) || (a == self.dst && b == self.src)
    }
}

/// Cut the flow's packets out of a capture read from its start.
pub fn carve(reader: impl Read + Send, key: &FlowKey) -> Result<Carved, CarveError> {
    let mut r = CaptureReader::new(reader).map_err(|e| CarveError::Read(e.to_string()))?;
    let mut records = Vec::new();
    let mut linktype = None;
    let mut packets = 0u64;
    loop {
        let p = match r.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(CarveError::Read(e.to_string())),
        };
        if p.offset > key.last_offset {
            break;
        }
        if p.offset < key.first_offset {
            continue;
        }
        let Decode::Packet(d) = decode(p.linktype, p.data) else {
            continue;
        };
        if !key.holds(&d) || *linktype.get_or_insert(p.linktype) != p.linktype {
            continue;
        }
        pcap_record(&mut records, p.ts_ns, p.data, p.orig_len);
        packets += 1;
    }
    let mut pcap = pcap_header(linktype.unwrap_or(1));
    pcap.extend_from_slice(&records);
    Ok(Carved { pcap, packets })
}

/// Where a capture's own bytes are, for carving.
pub enum Source<'a> {
    /// An object of the store (the functions' `uploads/...`), at the version analyzed.
    Object(Box<dyn Read + Send + 'a>),
    /// A file `weir analyze` read (its status names the path as typed), checked unchanged.
    File(std::fs::File),
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Object(r) => r.read(buf),
            Source::File(f) => f.read(buf),
        }
    }
}

/// BLAKE3 of a file, in hex: what `weir analyze` names a capture by (`content_id`) and
/// records as its `source_version`. BLAKE3 rather than SHA-256: ~4x faster here (AVX-512),
/// and this pass runs before the split can start.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// [`file_hash`] of a file, remembered per version of the file (size, mtime, inode: what a
/// directory store calls a file's version, `weir_store::file_version`), so the flow page's check
/// and the carve after it do not read a large capture again and again; a changed file is
/// hashed again.
fn file_hash_of_version(path: &Path) -> std::io::Result<String> {
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, (String, String)>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashMap::new()));
    let version = weir_store::file_version(&std::fs::metadata(path)?);
    if let Some((v, hash)) = seen.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        if *v == version {
            return Ok(hash.clone());
        }
    }
    let hash = file_hash(path)?;
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_path_buf(), (version, hash.clone()));
    Ok(hash)
}

/// Open the capture a status is about. A store key is opened at the version analyzed (a
/// replaced upload is refused). With `files_beside` (a data directory of `weir analyze`), a
/// source that is not a key is the path `weir analyze` was given: looked up as given, then
/// relative to `files_beside` (the directory the data directory is in), and used only if its
/// blake3 is the one analyzed.
pub fn open_source<'a>(
    store: &'a dyn Store,
    st: &Status,
    files_beside: Option<&Path>,
) -> Result<Source<'a>, CarveError> {
    let key_like = !st.source.starts_with('/') && !st.source.contains("..");
    if key_like {
        match store.exists(&st.source) {
            Ok(true) => {
                let r = match &st.source_version {
                    Some(v) if files_beside.is_none() => store.open_version(&st.source, v),
                    _ => store.open(&st.source),
                };
                return match r {
                    Ok(r) => Ok(Source::Object(r)),
                    Err(e) if e.fault == StoreFault::Changed => Err(CarveError::Unavailable(
                        format!("{} was replaced after it was analyzed", st.source),
                    )),
                    Err(e) => Err(PipelineError::from(e).into()),
                };
            }
            Ok(false) => {}
            Err(e) if e.fault == StoreFault::Permanent => {}
            Err(e) => return Err(PipelineError::from(e).into()),
        }
    }
    let Some(beside) = files_beside else {
        return Err(CarveError::Unavailable(format!(
            "{} is not in the store",
            st.source
        )));
    };
    let given = PathBuf::from(&st.source);
    let path = [given.clone(), beside.join(&given)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CarveError::Unavailable(format!(
                "{} (the file weir analyze read) is no longer there",
                st.source
            ))
        })?;
    if let Some(want) = &st.source_version {
        let have = file_hash_of_version(&path).map_err(|e| CarveError::Read(e.to_string()))?;
        if &have != want {
            return Err(CarveError::Unavailable(format!(
                "{} changed after it was analyzed",
                path.display()
            )));
        }
    }
    let f = std::fs::File::open(&path).map_err(|e| CarveError::Read(e.to_string()))?;
    Ok(Source::File(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The remembered hash is the file's until the file changes, then the new file's.
    #[test]
    fn a_remembered_hash_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pcap");
        std::fs::write(&path, b"first bytes").unwrap();
        let first = file_hash_of_version(&path).unwrap();
        assert_eq!(first, file_hash(&path).unwrap());
        assert_eq!(file_hash_of_version(&path).unwrap(), first);
        std::fs::write(&path, b"other bytes, longer").unwrap();
        let second = file_hash_of_version(&path).unwrap();
        assert_ne!(second, first);
        assert_eq!(second, file_hash(&path).unwrap());
    }
}
