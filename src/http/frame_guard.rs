//! Reads WebSocket frame headers off the raw request body, ahead of the
//! frame parser.
//!
//! actix's parser waits for a whole frame before it compares the frame's
//! length with the limit, so a client can announce a 1 GiB frame and send
//! nothing more: the connection is neither refused (1009) nor heard from
//! again (its pongs are taken for payload) until the idle timeout. The
//! guard follows the frame boundaries itself (2 to 14 header bytes, then
//! the announced payload, skipped) and flags the first header announcing
//! more than the limit, so the session closes with 1009 at once. It only
//! looks; the bytes go on unchanged.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use tokio::sync::Notify;

/// Set once a frame header announced more than the limit.
#[derive(Default)]
pub struct Oversized {
    flag: AtomicBool,
    notify: Notify,
}

impl Oversized {
    pub async fn wait(&self) {
        if self.flag.load(Ordering::Acquire) {
            return;
        }
        self.notify.notified().await;
    }

    fn set(&self) {
        if !self.flag.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }
}

/// Frame-boundary tracking, independent of I/O (unit-tested below).
#[derive(Debug, Default)]
struct Headers {
    /// Bytes of the current header read so far.
    header: Vec<u8>,
    /// Payload bytes of the current frame still to skip.
    skip: u64,
}

impl Headers {
    /// Feed bytes; true if a header announced more than `max`.
    fn feed(&mut self, mut bytes: &[u8], max: u64) -> bool {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = usize::try_from(self.skip).map_or(bytes.len(), |s| s.min(bytes.len()));
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            self.header.push(bytes[0]);
            bytes = &bytes[1..];
            let Some(len) = self.complete_header() else {
                continue;
            };
            self.header.clear();
            if len > max {
                return true;
            }
            self.skip = len;
        }
        false
    }

    /// The payload length once the header is complete.
    fn complete_header(&self) -> Option<u64> {
        let h = &self.header;
        if h.len() < 2 {
            return None;
        }
        let masked = h[1] & 0x80 != 0;
        let mask_len = if masked { 4 } else { 0 };
        let (len_bytes, short) = match h[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if h.len() < 2 + len_bytes + mask_len {
            return None;
        }
        Some(short.unwrap_or_else(|| {
            h[2..2 + len_bytes]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        }))
    }
}

/// The request body with the guard in front.
pub struct FrameGuard {
    inner: Payload,
    headers: Headers,
    max: u64,
    oversized: Arc<Oversized>,
    tripped: bool,
}

impl FrameGuard {
    pub fn new(inner: Payload, max_frame_bytes: usize) -> (FrameGuard, Arc<Oversized>) {
        let oversized = Arc::new(Oversized::default());
        (
            FrameGuard {
                inner,
                headers: Headers::default(),
                max: max_frame_bytes as u64,
                oversized: oversized.clone(),
                tripped: false,
            },
            oversized,
        )
    }
}

impl Stream for FrameGuard {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let next = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(bytes))) = &next {
            if !this.tripped && this.headers.feed(bytes, this.max) {
                this.tripped = true;
                this.oversized.set();
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u64, masked: bool) -> Vec<u8> {
        let mut f = vec![0x81];
        let m = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => f.push(m | len as u8),
            126..=65_535 => {
                f.push(m | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(m | 127);
                f.extend_from_slice(&len.to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(
            b'x',
            usize::try_from(len.min(70_000)).unwrap_or(0),
        ));
        f
    }

    #[test]
    fn follows_frames_and_flags_the_first_oversized_header() {
        let mut h = Headers::default();
        let mut stream = Vec::new();
        for len in [0, 5, 125, 126, 300, 65_535, 65_536] {
            stream.extend(frame(len, true));
        }
        // Byte by byte and all at once give the same answer.
        assert!(!h.feed(&stream, 65_536));
        let mut h = Headers::default();
        assert!(stream.iter().all(|b| !h.feed(&[*b], 65_536)));
        // A header announcing 1 GiB is flagged with no payload behind it.
        let mut h = Headers::default();
        let mut attack = frame(10, true);
        attack.extend_from_slice(&[0x81, 0xFF]);
        attack.extend_from_slice(&(1u64 << 30).to_be_bytes());
        attack.extend_from_slice(&[9, 9, 9, 9]);
        assert!(h.feed(&attack, 65_536));
    }
}
