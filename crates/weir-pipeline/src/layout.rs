//! Where a capture's objects live: ids and keys, the same on S3 and on disk.

/// Where upload notifications point: captures are uploaded under this prefix.
pub const UPLOADS: &str = "uploads/";

/// Flows per shard: about 3 MB of Parquet, far from any memory limit, and enough rows for a
/// GPU batch.
pub const SHARD_FLOWS: usize = 10_000;

/// Decode form/URL percent-encoding (an S3 event's key, a query's value): `+` is a space,
/// `%XX` a byte; a malformed escape is kept as it is; bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The id of a capture from its key: the file name without extension, cut to
/// `[A-Za-z0-9._-]`, then 8 hex digits of the whole key, so `a/x.pcap` and `b/x.pcap` differ.
/// (On S3 a key is the capture: uploading again under the same key replaces it.)
pub fn capture_id(key: &str) -> String {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}", clean_stem(key), h as u32)
}

/// Whether `id` is one an id could be ([`capture_id`], [`content_id`]): `[A-Za-z0-9._-]`, at
/// most 128 characters, not `.` or `..`. Anything else is refused before a key is built from it.
pub fn is_capture_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The id of a capture from its file name and a hash of its bytes (hex; `weir analyze` uses
/// BLAKE3), as `weir analyze` names what it reads: the cleaned stem, then 12 hex digits of the
/// digest, so two files that share a name but not their bytes never share an id, and the
/// same file analyzed again gets the same id (and its results are rewritten with the same
/// bytes).
pub fn content_id(name: &str, digest_hex: &str) -> String {
    let digest: String = digest_hex.chars().take(12).collect();
    format!("{}-{digest}", clean_stem(name))
}

/// The file name of a key or path without its extension, cut to `[A-Za-z0-9._-]` and 80
/// characters.
fn clean_stem(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

/// Everything of one capture is under this prefix.
pub fn capture_prefix(id: &str) -> String {
    format!("captures/{id}/")
}

/// Key of a capture's status object.
pub fn status_key(id: &str) -> String {
    format!("captures/{id}/status.json")
}

/// Key of a capture's split report.
pub fn split_key(id: &str) -> String {
    format!("captures/{id}/split.json")
}

/// Key of shard `n` of a capture.
pub fn shard_key(id: &str, n: u32) -> String {
    format!("captures/{id}/shards/{n:05}.parquet")
}

/// Key of the result of shard `n`.
pub fn result_key(id: &str, n: u32) -> String {
    format!("captures/{id}/results/{n:05}.parquet")
}

/// Where the results of a capture are (one object per shard).
pub fn results_prefix(id: &str) -> String {
    format!("captures/{id}/results/")
}

/// Key of a capture's summary.
pub fn summary_key(id: &str) -> String {
    format!("captures/{id}/summary.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_clean_and_tell_keys_apart() {
        let a = capture_id("uploads/a/my capture (1).pcap");
        assert!(a.starts_with("my_capture__1_-"), "{a}");
        assert_ne!(capture_id("a/x.pcap"), capture_id("b/x.pcap"));
        assert_eq!(capture_id("a/x.pcap"), capture_id("a/x.pcap"));
        assert!(capture_id("../../etc/passwd").starts_with("passwd-"));
        let sha = "0123456789abcdef0123456789abcdef";
        assert_eq!(content_id("dir/my cap.pcapng", sha), "my_cap-0123456789ab");
        assert_ne!(
            content_id("x.pcap", sha),
            content_id("x.pcap", "f123456789abcdef")
        );
    }
}
