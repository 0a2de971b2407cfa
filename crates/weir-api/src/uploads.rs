//! Uploads from the browser or the API into a local store, analyzed in the server's own
//! process by the pipeline's library functions (split, classify, aggregate: what the Lambda
//! functions run), one capture at a time; the captures page follows the status they write.
//!
//! | endpoint | does |
//! |---|---|
//! | `POST /api/uploads?name=FILE` | the body is the capture (`application/octet-stream`): 202 `{capture, status}`; 200 with `duplicate: true` when these bytes were uploaded before |
//! | `POST /upload` | the same from an HTML form (multipart field `capture`): 303 to the captures page |
//!
//! A body is never held in memory: it streams to a file in the incoming directory while its
//! BLAKE3 hash is computed, then into the store under a key made from its name and that hash
//! (`uploads/NAME-HASH12.pcap`), so its capture id comes from its content, as `weir analyze`
//! names what it reads: different bytes under a name already used are another capture (the
//! earlier one and its `uploads/` object are never replaced), and the same bytes uploaded
//! again, under any name, are the capture they already are (nothing stored or analyzed twice).
//! At most [`MAX_CONCURRENT`] uploads stream at once (503 beyond, saying so). A body over the
//! limit is a 413 that names the limit (refused from its `Content-Length` before it is read
//! when it says so); a file that is not PCAP or PCAPNG a 400 that says so; nothing is stored
//! for either.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;
use weir_pipeline::{
    aggregate, capture_id, classify_shards, mark_failed, split, SplitOptions, UPLOADS,
};

use crate::{ApiError, Flows};

/// The largest upload taken by default (`weir serve --max-upload`).
pub const MAX_UPLOAD: usize = 1 << 30;

/// Uploads streaming at once; another gets a 503 that says to retry.
pub const MAX_CONCURRENT: usize = 4;

/// What uploads need: where they go and how large they may be.
pub struct Uploads {
    flows: Arc<Flows>,
    max_bytes: usize,
    analyze_here: bool,
    one_at_a_time: Arc<Mutex<()>>,
    /// Where bodies stream to before they have their key.
    incoming: PathBuf,
    streaming: AtomicUsize,
}

impl Uploads {
    /// Uploads into `flows.store` (a local store), at most `max_bytes` each, analyzed here.
    pub fn new(flows: Arc<Flows>, max_bytes: usize) -> Self {
        Uploads {
            flows,
            max_bytes,
            analyze_here: true,
            one_at_a_time: Arc::new(Mutex::new(())),
            incoming: std::env::temp_dir(),
            streaming: AtomicUsize::new(0),
        }
    }

    /// Uploads into the functions' bucket: only stored under `uploads/`, where the bucket's
    /// notification starts the pipeline (the splitter function), as for any other upload.
    pub fn to_pipeline(flows: Arc<Flows>, max_bytes: usize) -> Self {
        Uploads {
            analyze_here: false,
            ..Uploads::new(flows, max_bytes)
        }
    }

    /// Stream bodies into files in `dir` (default: the system's temporary directory) before
    /// they are stored: it needs room for [`MAX_CONCURRENT`] uploads of the largest size.
    pub fn incoming(mut self, dir: PathBuf) -> Self {
        self.incoming = dir;
        self
    }

    fn too_large(&self, name: &str, bytes: Option<u64>) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{name}: too large ({}the limit is {} bytes, {}; weir serve --max-upload \
                 raises it, or analyze it with `weir analyze FILE`)",
                bytes.map_or(String::new(), |b| format!("{b} bytes: ")),
                self.max_bytes,
                human(self.max_bytes as u64)
            ),
        )
    }

    /// A slot to stream one upload in, or a 503 when all are taken.
    fn slot(self: &Arc<Self>) -> Result<Slot, ApiError> {
        let n = self.streaming.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(self.clone());
        if n >= MAX_CONCURRENT {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{MAX_CONCURRENT} uploads are arriving already (the limit at once): retry \
                     when one has finished"
                ),
            ));
        }
        Ok(slot)
    }
}

/// One of the [`MAX_CONCURRENT`] upload slots, given back when dropped.
struct Slot(Arc<Uploads>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.streaming.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `n` bytes for a person: `1 GiB`, `200 KiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The key an upload named `name` is stored under before its content is known: `uploads/` and
/// the file name cut to `[A-Za-z0-9._-]` (no directories, no `..`).
pub fn upload_key(name: &str) -> Result<String, ApiError> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        return Err(ApiError::bad(format!(
            "{name:?} is not a file name: give the capture's name (name=traffic.pcap)"
        )));
    }
    Ok(format!("{UPLOADS}{clean}"))
}

/// The hex BLAKE3 of an upload's bytes, as [`content_key`] takes it.
pub fn content_digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The key of an upload from its name and the hex BLAKE3 of its bytes: the name's stem, the
/// first 12 hex digits, its extension (`uploads/traffic-0123456789ab.pcap`).
pub fn content_key(name: &str, digest_hex: &str) -> Result<String, ApiError> {
    let key = upload_key(name)?;
    let digest: String = digest_hex.chars().take(12).collect();
    Ok(match key.rsplit_once('.') {
        Some((stem, ext)) if stem.len() > UPLOADS.len() => format!("{stem}-{digest}.{ext}"),
        _ => format!("{key}-{digest}"),
    })
}

/// The upload of these bytes already in the store, under any name: the key that ends in
/// `-HASH12` before its extension.
fn uploaded_before(
    store: &dyn weir_pipeline::Store,
    digest_hex: &str,
) -> Result<Option<String>, ApiError> {
    let tag = format!("-{}", &digest_hex[..12.min(digest_hex.len())]);
    Ok(store.list(UPLOADS)?.into_iter().find(|k| {
        let name = &k[UPLOADS.len()..];
        !name.contains('/')
            && name
                .rsplit_once('.')
                .map_or(name, |(stem, _)| stem)
                .ends_with(&tag)
    }))
}

/// Whether a body of `len` bytes starting with `bytes` looks like a capture (PCAP in either
/// byte order and resolution, PCAPNG).
fn looks_like_capture(bytes: &[u8], len: u64) -> bool {
    const MAGIC: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    len >= 24 && MAGIC.iter().any(|m| bytes.starts_with(m))
}

/// A body streamed to a file as it arrived: its size, hash and first bytes.
struct Spooled {
    file: tempfile::TempPath,
    bytes: u64,
    digest: String,
    head: Vec<u8>,
}

/// Writes a body to a file in the incoming directory as it arrives, a megabyte at a time
/// off the async threads, hashing it and counting it against the limit.
struct Spool {
    file: Option<std::fs::File>,
    path: tempfile::TempPath,
    hasher: blake3::Hasher,
    bytes: u64,
    head: Vec<u8>,
    buf: Vec<u8>,
}

const SPOOL_BUF: usize = 1 << 20;

impl Spool {
    fn new(up: &Uploads) -> Result<Spool, ApiError> {
        let f = tempfile::Builder::new()
            .prefix(".weir-upload-")
            .tempfile_in(&up.incoming)
            .map_err(|e| {
                ApiError::internal(format!(
                    "cannot write the upload to {}: {e}",
                    up.incoming.display()
                ))
            })?;
        let (file, path) = f.into_parts();
        Ok(Spool {
            file: Some(file),
            path,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            head: Vec::new(),
            buf: Vec::with_capacity(SPOOL_BUF),
        })
    }

    async fn push(&mut self, up: &Uploads, name: &str, chunk: &[u8]) -> Result<(), ApiError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > up.max_bytes as u64 {
            return Err(up.too_large(name, None));
        }
        if self.head.len() < 64 {
            let take = (64 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= SPOOL_BUF {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ApiError> {
        let (Some(mut file), mut buf) = (self.file.take(), std::mem::take(&mut self.buf)) else {
            return Ok(());
        };
        let (file, mut buf) = tokio::task::spawn_blocking(move || {
            let r = file.write_all(&buf);
            buf.clear();
            r.map(|()| (file, buf))
        })
        .await
        .map_err(|e| ApiError::internal(format!("the upload's writer failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("cannot write the upload: {e}")))?;
        self.file = Some(file);
        std::mem::swap(&mut self.buf, &mut buf);
        Ok(())
    }

    async fn done(mut self) -> Result<Spooled, ApiError> {
        self.flush().await?;
        Ok(Spooled {
            file: self.path,
            bytes: self.bytes,
            digest: self.hasher.finalize().to_hex().to_string(),
            head: self.head,
        })
    }
}

/// What became of an upload: its capture, and whether these bytes were there already.
struct Accepted {
    id: String,
    duplicate: bool,
}

/// Store a streamed upload under its content key and start its analysis.
fn accept(up: &Uploads, name: &str, body: Spooled) -> Result<Accepted, ApiError> {
    if !looks_like_capture(&body.head, body.bytes) {
        return Err(ApiError::bad(format!(
            "{name} is not a capture: weir reads PCAP and PCAPNG files (this one starts {:02x?})",
            &body.head[..body.head.len().min(4)]
        )));
    }
    let key = content_key(name, &body.digest)?;
    let store = up.flows.store.clone();
    if let Some(before) = uploaded_before(store.as_ref(), &body.digest)? {
        return Ok(Accepted {
            id: capture_id(&before),
            duplicate: true,
        });
    }
    let id = capture_id(&key);
    store.put_file(&key, &body.file)?;
    if !up.analyze_here {
        return Ok(Accepted {
            id,
            duplicate: false,
        });
    }
    let gate = up.one_at_a_time.clone();
    let flows = up.flows.clone();
    std::thread::spawn(move || {
        let _one = gate.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(reason) = analyze(&flows, &key) {
            let _ = mark_failed(store.as_ref(), &capture_id(&key), None, &reason);
        }
    });
    Ok(Accepted {
        id,
        duplicate: false,
    })
}

/// The pipeline over one upload, in this process, with the server's current model.
fn analyze(flows: &Flows, key: &str) -> Result<(), String> {
    let store = flows.store.as_ref();
    let mut msgs = Vec::new();
    let report = split(store, key, &SplitOptions::default(), |m| {
        msgs.push(m.clone());
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    if report.is_none() {
        return Ok(());
    }
    flows.with_model(|c| {
        for r in classify_shards(store, c, &msgs) {
            r.map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    })??;
    aggregate(store, &capture_id(key)).map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
}

/// A `Content-Length` over the limit: refused before a byte is read.
fn declared_too_large(up: &Uploads, name: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > up.max_bytes as u64 + FORM_ROOM => Err(up.too_large(name, Some(n))),
        _ => Ok(()),
    }
}

/// What a multipart form adds around the file: its boundaries and part headers.
const FORM_ROOM: u64 = 64 * 1024;

async fn raw(
    State(up): State<Arc<Uploads>>,
    QueryParams(n): QueryParams<Named>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    upload_key(&n.name)?;
    declared_too_large(&up, &n.name, &headers)?;
    let _slot = up.slot()?;
    let mut spool = Spool::new(&up)?;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad(format!("{}: the upload did not arrive whole: {e}", n.name))
        })?;
        if let Ok(data) = frame.into_data() {
            spool.push(&up, &n.name, &data).await?;
        }
    }
    let a = accepted(up.clone(), n.name, spool.done().await?).await?;
    let id = &a.id;
    let status = if a.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(json!({
            "capture": id,
            "status": format!("/api/captures/{id}"),
            "duplicate": a.duplicate,
        })),
    )
        .into_response())
}

/// A form post answers with the captures page either way: the new capture, or why not.
async fn form(State(up): State<Arc<Uploads>>, headers: HeaderMap, parts: Multipart) -> Response {
    let r = match declared_too_large(&up, "the capture", &headers) {
        Ok(()) => form_upload(&up, parts).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(a) => Redirect::to(&format!("/?uploaded={}", a.id)).into_response(),
        Err(e) => {
            let message = e.body["error"]
                .as_str()
                .unwrap_or("the upload failed")
                .to_string();
            Redirect::to(&format!("/?upload_error={}", keep_note(message))).into_response()
        }
    }
}

/// Why a browser's upload was refused, kept for the page the browser is sent back to. The
/// address carries only a random id (`/?upload_error=ID`): the page shows a message this
/// server wrote, never words another site put in a link.
static NOTES: Mutex<Vec<(String, std::time::Instant, String)>> = Mutex::new(Vec::new());
/// Notes kept at once (the oldest goes first) and for how long.
const NOTES_KEPT: usize = 64;
const NOTE_TTL: std::time::Duration = std::time::Duration::from_secs(600);

fn keep_note(message: String) -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let mut n = NOTES.lock().unwrap_or_else(|p| p.into_inner());
    n.retain(|(_, at, _)| at.elapsed() < NOTE_TTL);
    if n.len() >= NOTES_KEPT {
        n.remove(0);
    }
    n.push((id.clone(), std::time::Instant::now(), message));
    id
}

/// The message of a refused browser upload by the id its page was given; `None` for an id
/// this server did not give out (or gave out more than ten minutes ago).
pub fn upload_note(id: &str) -> Option<String> {
    let n = NOTES.lock().unwrap_or_else(|p| p.into_inner());
    n.iter()
        .find(|(i, at, _)| i == id && at.elapsed() < NOTE_TTL)
        .map(|(_, _, m)| m.clone())
}

pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// [`accept`] off the async threads (the store may block).
async fn accepted(up: Arc<Uploads>, name: String, body: Spooled) -> Result<Accepted, ApiError> {
    crate::blocking(move || accept(&up, &name, body)).await
}

async fn form_upload(up: &Arc<Uploads>, mut parts: Multipart) -> Result<Accepted, ApiError> {
    let _slot = up.slot()?;
    while let Some(mut field) = parts
        .next_field()
        .await
        .map_err(|e| ApiError::bad(format!("the upload did not arrive whole: {e}")))?
    {
        if field.name() != Some("capture") {
            continue;
        }
        let name = field.file_name().unwrap_or("").to_string();
        upload_key(&name)?;
        let mut spool = Spool::new(up)?;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| ApiError::bad(format!("{name}: the upload did not arrive whole: {e}")))?
        {
            spool.push(up, &name, &chunk).await?;
        }
        return accepted(up.clone(), name, spool.done().await?).await;
    }
    Err(ApiError::bad(
        "no file in the form: choose a capture (field `capture`)",
    ))
}

/// The upload routes. Bodies are counted as they stream (the limit is the upload's own, with
/// a message that names it), not by the framework's buffer limit.
pub fn router(up: Arc<Uploads>) -> Router {
    Router::new()
        .route("/api/uploads", post(raw))
        .route("/upload", post(form))
        .layer(DefaultBodyLimit::disable())
        .with_state(up)
}
