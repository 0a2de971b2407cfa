//! [`S3Store`]: weir-pipeline's object store over S3.

use std::io::Read;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use tokio::runtime::Handle;
use weir_pipeline::{Condition, Store, StoreError, StoreFault, StoreIoError};

use crate::AwsError;

/// Bytes fetched per ranged GET when streaming an object: the reader's memory bound.
pub const RANGE_BYTES: u64 = 8 << 20;

/// One S3 bucket as weir's object store. Synchronous: call it from a blocking thread (see
/// the crate docs), never from inside an async task.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    rt: Handle,
}

/// What an S3 failure means for the caller: no such object (404), the object is not the
/// version asked for or a conditional write lost (412, 409), trying again will not help
/// (other 4xx: access denied, bad request), or temporary (timeouts, connection failures,
/// throttling 429/503, other 5xx) — after the SDK's own retries.
pub fn fault<E>(e: &SdkError<E, HttpResponse>) -> StoreFault {
    match e {
        SdkError::ServiceError(se) => status_fault(se.raw().status().as_u16()),
        SdkError::ResponseError(r) => status_fault(r.raw().status().as_u16()),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => StoreFault::Transient,
        // Request construction failed: a bug or a bad setting, not the network.
        _ => StoreFault::Permanent,
    }
}

fn status_fault(status: u16) -> StoreFault {
    match status {
        404 => StoreFault::NotFound,
        409 | 412 => StoreFault::Changed,
        408 | 429 => StoreFault::Transient,
        400..=499 => StoreFault::Permanent,
        _ => StoreFault::Transient,
    }
}

fn store_err<E: std::error::Error + 'static>(
    key: &str,
    what: String,
    e: SdkError<E, HttpResponse>,
) -> StoreError {
    let f = fault(&e);
    StoreError::new(key, f, AwsError::new(what, e))
}

/// PUT one object (what `put` and each of `put_many`'s tasks send), conditionally when `cond`
/// is given: `Ok(false)` when the condition did not hold.
async fn put_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
    cond: Option<&Condition>,
) -> Result<bool, StoreError> {
    let mut req = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes));
    req = match cond {
        None => req,
        Some(Condition::Absent) => req.if_none_match("*"),
        Some(Condition::Version(etag)) => req.if_match(etag),
    };
    match req.send().await {
        Ok(_) => Ok(true),
        Err(e) if cond.is_some() && fault(&e) == StoreFault::Changed => Ok(false),
        Err(e) => Err(store_err(key, format!("PUT s3://{bucket}/{key}"), e)),
    }
}

impl S3Store {
    /// The store over `bucket`; `rt` runs the SDK's futures.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, rt: Handle) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            rt,
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Object size and ETag, or None when there is no such object.
    pub fn head(&self, key: &str) -> Result<Option<(u64, String)>, StoreError> {
        let r = self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        );
        match r {
            Ok(o) => Ok(Some((
                o.content_length().unwrap_or(0).max(0) as u64,
                o.e_tag().unwrap_or_default().to_string(),
            ))),
            Err(e) if fault(&e) == StoreFault::NotFound => Ok(None),
            Err(e) => Err(store_err(
                key,
                format!("HEAD s3://{}/{key}", self.bucket),
                e,
            )),
        }
    }

    /// Bytes `[start, end)` of an object, only of version `etag` (`If-Match`); a body cut off
    /// in transfer is fetched again (3 tries) on top of the SDK's own retries of the request.
    fn range(
        &self,
        key: &str,
        etag: Option<&str>,
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let what = format!("GET s3://{}/{key} bytes {start}-{}", self.bucket, end - 1);
        let mut last = None;
        for _ in 0..3 {
            let range = Some(format!("bytes={start}-{}", end - 1));
            match self.rt.block_on(self.fetch(key, range, etag, &what)) {
                Ok((b, _)) => return Ok(b),
                // Not worth another try here: the object is gone or another version.
                Err(e) if e.fault != StoreFault::Transient => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| StoreError::new(key, StoreFault::Transient, what)))
    }
}

impl S3Store {
    /// GET an object (or a `bytes=A-B` range of it) whole, with its ETag; only of version
    /// `etag` when given (a 412 is [`StoreFault::Changed`]).
    async fn fetch(
        &self,
        key: &str,
        range: Option<String>,
        etag: Option<&str>,
        what: &str,
    ) -> Result<(Vec<u8>, String), StoreError> {
        let o = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .set_if_match(etag.map(String::from))
            .send()
            .await
            .map_err(|e| store_err(key, what.to_string(), e))?;
        let tag = o.e_tag().unwrap_or_default().to_string();
        // A reply of another version than asked for (a server ignoring If-Match) is refused.
        if let Some(want) = etag {
            if !tag.is_empty() && tag != want {
                return Err(StoreError::new(
                    key,
                    StoreFault::Changed,
                    format!("{what}: ETag {tag}, the read was pinned to {want}"),
                ));
            }
        }
        o.body
            .collect()
            .await
            .map(|b| (b.into_bytes().to_vec(), tag))
            .map_err(|e| StoreError::new(key, StoreFault::Transient, AwsError::new(what, e)))
    }

    /// Every page of a listing under `prefix`: the keys, and with a `delimiter` the common
    /// prefixes (what `list` and `children` read).
    async fn listing(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>), StoreError> {
        let what = format!("LIST s3://{}/{prefix}", self.bucket);
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(String::from))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_err(prefix, what.clone(), e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(String::from)),
            );
            dirs.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(String::from)),
            );
        }
        Ok((keys, dirs))
    }
}

/// Streams an object with ranged GETs of [`RANGE_BYTES`], each pinned to one ETag: an
/// object overwritten while it is read fails the read ([`StoreFault::Changed`]) instead of
/// stitching two files together.
struct RangedReader<'a> {
    store: &'a S3Store,
    key: String,
    etag: Option<String>,
    size: u64,
    next: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for RangedReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.buf.len() {
            if self.next >= self.size {
                return Ok(0);
            }
            let end = (self.next + RANGE_BYTES).min(self.size);
            self.buf = self
                .store
                .range(&self.key, self.etag.as_deref(), self.next, end)
                .map_err(|e| StoreIoError::into_io(e.fault, e))?;
            self.pos = 0;
            self.next = end;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl S3Store {
    fn reader(&self, key: &str, pin: Option<&str>) -> Result<RangedReader<'_>, StoreError> {
        let (size, etag) = self.head(key)?.ok_or_else(|| {
            StoreError::new(
                key,
                StoreFault::NotFound,
                format!("no such object in bucket {}", self.bucket),
            )
        })?;
        if let Some(want) = pin {
            if want != etag {
                return Err(StoreError::new(
                    key,
                    StoreFault::Changed,
                    format!("s3://{}/{key} is ETag {etag} now, not {want}", self.bucket),
                ));
            }
        }
        Ok(RangedReader {
            store: self,
            key: key.to_string(),
            etag: (!etag.is_empty()).then_some(etag),
            size,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        })
    }
}

impl Store for S3Store {
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        Ok(Box::new(self.reader(key, None)?))
    }

    fn version(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.head(key)?.map(|(_, etag)| etag))
    }

    fn open_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        Ok(Box::new(self.reader(key, Some(version))?))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let what = format!("GET s3://{}/{key}", self.bucket);
        Ok(self.rt.block_on(self.fetch(key, None, None, &what))?.0)
    }

    fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let what = format!("GET s3://{}/{key}", self.bucket);
        match self.rt.block_on(self.fetch(key, None, None, &what)) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn put_if(&self, key: &str, bytes: &[u8], cond: &Condition) -> Result<bool, StoreError> {
        self.rt.block_on(put_object(
            &self.client,
            &self.bucket,
            key,
            bytes.to_vec(),
            Some(cond),
        ))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.rt
            .block_on(put_object(
                &self.client,
                &self.bucket,
                key,
                bytes.to_vec(),
                None,
            ))
            .map(|_| ())
    }

    fn put_file(&self, key: &str, path: &std::path::Path) -> Result<(), StoreError> {
        self.rt.block_on(async {
            let body = ByteStream::from_path(path).await.map_err(|e| {
                StoreError::new(
                    key,
                    StoreFault::Permanent,
                    format!("{}: {e}", path.display()),
                )
            })?;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| store_err(key, format!("PUT s3://{}/{key}", self.bucket), e))
        })
    }

    fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        // Up to this many PUTs in flight (a classifier writes a search part per day).
        const IN_FLIGHT: usize = 16;
        self.rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            let mut objects = objects.into_iter();
            let mut first = None;
            loop {
                while set.len() < IN_FLIGHT {
                    let Some((key, bytes)) = objects.next() else {
                        break;
                    };
                    let (client, bucket) = (self.client.clone(), self.bucket.clone());
                    set.spawn(async move {
                        put_object(&client, &bucket, &key, bytes, None)
                            .await
                            .map(|_| ())
                    });
                }
                let err = match set.join_next().await {
                    None => break,
                    Some(Ok(Ok(()))) => continue,
                    Some(Ok(Err(e))) => e,
                    Some(Err(e)) => StoreError::new("PUT", StoreFault::Transient, e),
                };
                first.get_or_insert(err);
            }
            first.map_or(Ok(()), Err)
        })
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.head(key)?.is_some())
    }

    fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.head(key)?.map(|(n, _)| n))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let what = format!("DELETE s3://{}/{key}", self.bucket);
        self.rt
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| store_err(key, what, e))
    }

    fn children(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (keys, dirs) = self.rt.block_on(self.listing(prefix, Some("/")))?;
        let mut out: Vec<String> = dirs
            .iter()
            .chain(&keys)
            .filter_map(|k| {
                let rest = k.strip_prefix(prefix)?.trim_end_matches('/');
                (!rest.is_empty()).then(|| rest.to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let (mut keys, _) = self.rt.block_on(self.listing(prefix, None))?;
        keys.sort();
        Ok(keys)
    }
}
