//! Image uploads: the content decides what a file is, never its name.
//!
//! A file is accepted only if its magic bytes say JPEG, PNG or WebP *and*
//! it decodes completely as that format within pixel limits (a file with
//! the right header and a broken body is refused too). The first image of a
//! listing is shown as its thumbnail: every upload gets a 320 px JPEG
//! thumbnail made here, so clients never download originals for lists.

use std::io::Cursor;
use std::sync::Arc;

use image::{ImageFormat, ImageReader, Limits};
use rand::RngCore as _;

use crate::domain::ids::UserId;
use crate::domain::now_ms;
use crate::error::{area_error, Code, Refuse};
use crate::service::gate::Gate;
use crate::store::media::MediaStorage;
use crate::store::sql::{MediaRecord, NewMedia, SqlStore};

area_error! {
    /// What the media service (uploads and their checks) answers instead of a result.
    pub enum MediaError {
        own {}
        from {}
    }
}

pub const THUMB_SIZE: u32 = 320;
/// No side longer than this...
const MAX_SIDE: u32 = 12_000;
/// ...and at most this many pixels (a 48-megapixel phone photo fits).
/// Checked from the header before anything is decoded: a 631-byte JPEG
/// may claim 12000 x 12000 pixels.
const MAX_PIXELS: u64 = 50_000_000;
/// What one decode may allocate: the RGB pixels of the largest image we
/// take plus the decoders' own buffers.
const DECODE_BUDGET: u64 = 256 * 1024 * 1024;

#[derive(Clone)]
pub struct Media {
    sql: Arc<SqlStore>,
    storage: Arc<dyn MediaStorage>,
    max_bytes: usize,
    /// Decoding runs a few at a time, each within DECODE_BUDGET.
    gate: Gate,
    limits: UploadLimits,
}

/// What one user may upload.
#[derive(Clone)]
pub struct UploadLimits {
    /// Uploads per user per hour.
    pub per_hour: u32,
    /// Bytes of originals one user may keep (attached or not).
    pub quota_bytes: i64,
    /// Uploads nothing uses are deleted after this long.
    pub orphan_after: std::time::Duration,
    pub limiter: Arc<dyn crate::store::RateLimiter>,
}

/// The format from the first bytes, for the three formats we take.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some(ImageFormat::Png)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else {
        None
    }
}

fn bad_image(why: impl Into<String>) -> MediaError {
    MediaError::new(Code::BadImage, why)
}

struct Processed {
    format: ImageFormat,
    width: u32,
    height: u32,
    thumb: Vec<u8>,
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(DECODE_BUDGET);
    limits
}

/// The JPEG's marker structure is complete: every segment is whole and the
/// image ends with EOI. The decoder fills a truncated scan with grey
/// instead of failing, so a cut-off upload would otherwise be accepted.
/// Bytes after EOI (some cameras append data there) are allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // A marker: 0xFF (fill bytes allowed), then its code.
        while bytes.get(i) == Some(&0xFF) && bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let (Some(&0xFF), Some(&code)) = (bytes.get(i), bytes.get(i + 1)) else {
            return false;
        };
        i += 2;
        match code {
            0xD9 => return true,            // EOI
            0x01 | 0xD0..=0xD7 => continue, // no length
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (bytes.get(i), bytes.get(i + 1)) else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 2 || i + len > bytes.len() {
            return false;
        }
        i += len;
        if code == 0xDA {
            // Entropy-coded data up to the next marker that is neither a
            // stuffed 0xFF00 nor a restart marker.
            loop {
                match (bytes.get(i), bytes.get(i + 1)) {
                    (Some(&0xFF), Some(&(0x00 | 0xD0..=0xD7))) => i += 2,
                    (Some(&0xFF), Some(_)) => break,
                    (Some(_), _) => i += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// Check what the header claims before decoding anything.
fn check_header(bytes: &[u8], format: ImageFormat) -> Result<(), MediaError> {
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(bad_image("the JPEG file is truncated or malformed"));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| bad_image(format!("the image header could not be read: {e}")))?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS
    {
        return Err(bad_image(format!(
            "{w} x {h} pixels is too large (at most {MAX_SIDE} per side and {MAX_PIXELS} pixels)"
        )));
    }
    Ok(())
}

/// Check the header, then decode fully within the memory budget
/// (validating the whole file) and make the thumbnail.
fn process(bytes: &[u8]) -> Result<Processed, MediaError> {
    let format = sniff(bytes).ok_or_else(|| bad_image("not a JPEG, PNG or WebP image"))?;
    check_header(bytes, format)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    let img = reader
        .decode()
        .map_err(|e| bad_image(format!("the image could not be decoded: {e}")))?;
    let (width, height) = (img.width(), img.height());
    let thumb = img.thumbnail(THUMB_SIZE, THUMB_SIZE).to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&thumb)
        .map_err(|e| MediaError::internal(format!("thumbnail encoding: {e}")))?;
    Ok(Processed {
        format,
        width,
        height,
        thumb: out,
    })
}

fn random_name() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn content_type_of_key(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("jpg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        _ => "application/octet-stream",
    }
}

impl Media {
    pub fn new(
        sql: Arc<SqlStore>,
        storage: Arc<dyn MediaStorage>,
        max_bytes: usize,
        limits: UploadLimits,
    ) -> Media {
        Media {
            sql,
            storage,
            max_bytes,
            gate: Gate::new("image processing", Gate::cores(), 16),
            limits,
        }
    }

    fn over_quota(&self) -> MediaError {
        let mib = self.limits.quota_bytes / (1024 * 1024);
        MediaError::new(
            Code::LimitReached,
            format!("your uploads may take at most {mib} MiB; remove some listings' photos first"),
        )
        .with_details(serde_json::json!({"limit": "storage", "max": self.limits.quota_bytes}))
    }

    /// Delete the uploads nothing uses (no listing, product or review)
    /// that are older than `media_orphan_hours`: rows first (only if still
    /// unused), then their files. Safe on several nodes at once. How many
    /// went.
    pub async fn sweep_orphans(&self) -> Result<usize, MediaError> {
        let age = i64::try_from(self.limits.orphan_after.as_millis()).unwrap_or(i64::MAX);
        let before = now_ms().saturating_sub(age);
        let mut gone = 0;
        loop {
            let batch = self.sql.media().orphan_media(before, 100).await?;
            let n = batch.len();
            for (id, original, thumb) in batch {
                if self.sql.media().delete_orphan_media(id).await? {
                    // A file that is already gone is fine; one that cannot
                    // be deleted now is left (the row is gone, nothing
                    // links to it).
                    let _ = self.storage.delete(&original).await;
                    let _ = self.storage.delete(&thumb).await;
                    gone += 1;
                }
            }
            if n < 100 {
                break;
            }
        }
        if gone > 0 {
            tracing::info!(gone, "unattached uploads deleted");
        }
        Ok(gone)
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn storage(&self) -> &Arc<dyn MediaStorage> {
        &self.storage
    }

    /// Validate, store original and thumbnail, record. On any failure
    /// nothing is left behind.
    pub async fn upload(&self, owner: i64, bytes: Vec<u8>) -> Result<MediaRecord, MediaError> {
        if bytes.is_empty() {
            return Err(bad_image("the file is empty"));
        }
        if bytes.len() > self.max_bytes {
            return Err(MediaError::new(
                Code::PayloadTooLarge,
                format!("images may be at most {} bytes", self.max_bytes),
            ));
        }
        // Before any decoding: the hourly count, then the quota (checked
        // again, atomically, by the insert).
        let w = self
            .limits
            .limiter
            .hit(&format!("upload:{owner}"), 3600)
            .await?;
        if w.count > self.limits.per_hour {
            return Err(MediaError::rate_limited(w.resets_in_secs.max(1))
                .with_message(format!("at most {} uploads an hour", self.limits.per_hour)));
        }
        if self.sql.media().media_bytes_of(owner).await? + bytes.len() as i64
            > self.limits.quota_bytes
        {
            return Err(self.over_quota());
        }
        let (bytes, p) = self
            .gate
            .run(move || process(&bytes).map(|p| (bytes, p)))
            .await??;
        let (ext, content_type) = match p.format {
            ImageFormat::Png => ("png", "image/png"),
            ImageFormat::WebP => ("webp", "image/webp"),
            _ => ("jpg", "image/jpeg"),
        };
        let name = random_name();
        // Spread files over 256 folders by the name's first two hex digits.
        let shard = name.get(..2).unwrap_or("00");
        let original_key = format!("o/{shard}/{name}.{ext}");
        let thumb_key = format!("t/{shard}/{name}.jpg");
        let size = bytes.len() as i64;
        self.storage.put(&original_key, bytes).await?;
        if let Err(e) = self.storage.put(&thumb_key, p.thumb).await {
            let _ = self.storage.delete(&original_key).await;
            return Err(e.into());
        }
        let inserted = self
            .sql
            .media()
            .insert_media(
                &NewMedia {
                    owner: UserId(owner),
                    content_type,
                    bytes: size,
                    width: i64::from(p.width),
                    height: i64::from(p.height),
                    original_key: &original_key,
                    thumb_key: &thumb_key,
                },
                self.limits.quota_bytes,
                now_ms(),
            )
            .await;
        let id = match inserted {
            Ok(Some(id)) => id,
            other => {
                let _ = self.storage.delete(&original_key).await;
                let _ = self.storage.delete(&thumb_key).await;
                return Err(match other {
                    Err(e) => e.into(),
                    _ => self.over_quota(),
                });
            }
        };
        self.sql
            .media()
            .media(&[id])
            .await?
            .pop()
            .ok_or_else(|| MediaError::internal("media row vanished"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode as _;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .expect("encode");
        out
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(&png(2, 2)), Some(ImageFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageFormat::WebP));
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"<html>"), None);
    }

    #[test]
    fn thumbnails_fit_the_box() {
        let p = process(&png(1000, 500)).expect("valid");
        assert_eq!((p.width, p.height), (1000, 500));
        let t = image::load_from_memory(&p.thumb).expect("thumb decodes");
        assert_eq!((t.width(), t.height()), (320, 160));
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 50]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .expect("encode");
        out
    }

    /// A real small JPEG whose frame header claims `w` x `h`.
    fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
        let mut b = jpeg(8, 8);
        let sof = b
            .windows(2)
            .position(|m| m == [0xFF, 0xC0])
            .expect("baseline SOF0");
        // FFC0, length (2), precision (1), height (2), width (2)
        b[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        b[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        b
    }

    #[test]
    fn jpegs_must_be_complete() {
        let good = jpeg(64, 48);
        assert!(jpeg_is_complete(&good));
        assert!(process(&good).is_ok());
        let mut trailer = good.clone();
        trailer.extend_from_slice(b"appended by a camera");
        assert!(process(&trailer).is_ok(), "data after EOI is allowed");
        for cut in [good.len() - 2, good.len() / 2, 30] {
            let cut_off = &good[..cut];
            assert!(!jpeg_is_complete(cut_off), "cut at {cut}");
            assert!(process(cut_off).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bombs_are_refused_from_the_header() {
        let bomb = jpeg_claiming(12_000, 12_000);
        assert!(bomb.len() < 2_000, "{}", bomb.len());
        let err = process(&bomb).err().expect("refused");
        assert_eq!(err.code(), Code::BadImage);
        assert!(err.message().contains("too large"), "{err}");
        // PNG of zeros: tiny file, huge canvas.
        let zeros = image::GrayImage::new(9_000, 9_000);
        let mut png_bomb = Vec::new();
        image::DynamicImage::ImageLuma8(zeros)
            .write_to(&mut Cursor::new(&mut png_bomb), ImageFormat::Png)
            .expect("encode");
        assert!(png_bomb.len() < 1_000_000, "{}", png_bomb.len());
        let err = process(&png_bomb).err().expect("refused");
        assert!(err.message().contains("too large"), "{err}");
    }

    #[test]
    fn right_magic_broken_body_is_refused() {
        let mut b = png(50, 50);
        b.truncate(40);
        assert!(process(&b).is_err());
        assert!(process(b"\x89PNG\r\n\x1a\nnot really").is_err());
    }
}
