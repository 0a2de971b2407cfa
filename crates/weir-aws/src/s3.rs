//! [`S3Store`]: weir-pipeline's object store over S3.

use std::io::Read;

use aws_sdk_s3::primitives::ByteStream;
use tokio::runtime::Handle;
use weir_pipeline::{PipelineError, Store};

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

fn store_err(key: &str, e: AwsError) -> PipelineError {
    PipelineError::Store(key.to_string(), e.to_string())
}

/// PUT one object (what `put` and each of `put_many`'s tasks send).
async fn put_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Result<(), PipelineError> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| store_err(key, AwsError::new(format!("PUT s3://{bucket}/{key}"), e)))
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

    /// Object size, or None when there is no such object.
    pub fn size(&self, key: &str) -> Result<Option<u64>, PipelineError> {
        let r = self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        );
        match r {
            Ok(o) => Ok(Some(o.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(store_err(
                key,
                AwsError::new(format!("HEAD s3://{}/{key}", self.bucket), e),
            )),
        }
    }

    /// Bytes `[start, end)` of an object; a body cut off in transfer is fetched again
    /// (3 tries) on top of the SDK's own retries of the request.
    fn range(&self, key: &str, start: u64, end: u64) -> Result<Vec<u8>, PipelineError> {
        let what = format!("GET s3://{}/{key} bytes {start}-{}", self.bucket, end - 1);
        let mut last = String::new();
        for _ in 0..3 {
            let r = self.rt.block_on(self.fetch(
                key,
                Some(format!("bytes={start}-{}", end - 1)),
                &what,
            ));
            match r {
                Ok(b) => return Ok(b),
                Err(e) => last = e.to_string(),
            }
        }
        Err(PipelineError::Store(key.to_string(), last))
    }
}

impl S3Store {
    /// GET an object (or a `bytes=A-B` range of it) whole.
    async fn fetch(
        &self,
        key: &str,
        range: Option<String>,
        what: &str,
    ) -> Result<Vec<u8>, AwsError> {
        let o = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| AwsError::new(what, e))?;
        o.body
            .collect()
            .await
            .map(|b| b.into_bytes().to_vec())
            .map_err(|e| AwsError::new(what, e))
    }

    /// Every page of a listing under `prefix`: the keys, and with a `delimiter` the common
    /// prefixes (what `list` and `children` read).
    async fn listing(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>), PipelineError> {
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
            let page = page.map_err(|e| store_err(prefix, AwsError::new(&what, e)))?;
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

/// Streams an object with ranged GETs of [`RANGE_BYTES`].
struct RangedReader<'a> {
    store: &'a S3Store,
    key: String,
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
                .range(&self.key, self.next, end)
                .map_err(std::io::Error::other)?;
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

impl Store for S3Store {
    fn open(&self, key: &str) -> Result<Box<dyn Read + Send + '_>, PipelineError> {
        let size = self.size(key)?.ok_or_else(|| {
            PipelineError::Store(
                key.to_string(),
                format!("no such object in bucket {}", self.bucket),
            )
        })?;
        Ok(Box::new(RangedReader {
            store: self,
            key: key.to_string(),
            size,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        }))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, PipelineError> {
        let what = format!("GET s3://{}/{key}", self.bucket);
        self.rt
            .block_on(self.fetch(key, None, &what))
            .map_err(|e| store_err(key, e))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), PipelineError> {
        self.rt
            .block_on(put_object(&self.client, &self.bucket, key, bytes.to_vec()))
    }

    fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Result<(), PipelineError> {
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
                    set.spawn(async move { put_object(&client, &bucket, &key, bytes).await });
                }
                let err = match set.join_next().await {
                    None => break,
                    Some(Ok(Ok(()))) => continue,
                    Some(Ok(Err(e))) => e,
                    Some(Err(e)) => PipelineError::Store("PUT".into(), e.to_string()),
                };
                first.get_or_insert(err);
            }
            first.map_or(Ok(()), Err)
        })
    }

    fn exists(&self, key: &str) -> Result<bool, PipelineError> {
        Ok(self.size(key)?.is_some())
    }

    fn delete(&self, key: &str) -> Result<(), PipelineError> {
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
            .map_err(|e| store_err(key, AwsError::new(what, e)))
    }

    fn children(&self, prefix: &str) -> Result<Vec<String>, PipelineError> {
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

    fn list(&self, prefix: &str) -> Result<Vec<String>, PipelineError> {
        let (mut keys, _) = self.rt.block_on(self.listing(prefix, None))?;
        keys.sort();
        Ok(keys)
    }
}
