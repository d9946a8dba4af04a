//! Image uploads and serving.

use super::*;
use crate::http::error::{NotFound, TooLarge};

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaView {
    pub id: i64,
    pub url: String,
    pub thumbnail_url: String,
    pub content_type: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
}

impl From<&MediaRecord> for MediaView {
    fn from(m: &MediaRecord) -> MediaView {
        MediaView {
            id: m.id,
            url: media_url(&m.original_key),
            thumbnail_url: media_url(&m.thumb_key),
            content_type: m.content_type.clone(),
            bytes: m.bytes,
            width: m.width,
            height: m.height,
        }
    }
}

/// Multipart form with one file field named `file`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "read only by the OpenAPI derive")]
pub struct UploadForm {
    /// JPEG, PNG or WebP; checked by content.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload an image (uploads nothing uses are deleted after `media_orphan_hours`) (multipart/form-data, field `file`). Attach it to a
/// listing by id. The file type is decided by its content, not its name.
#[utoipa::path(
    tag = "market",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = MediaView),
        TooLarge,
        (status = 415, description = "`unsupported_media_type`: not multipart", body = ErrorBody),
        (status = 409, description = "`limit_reached` (`storage`): the user's uploads would pass `media_quota_mib`", body = ErrorBody),
        (status = 422, description = "`bad_image` or `validation_failed` (no `file` field)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than `uploads_per_hour` uploads in the last hour (`Retry-After`)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/media")]
pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "send multipart/form-data with a `file` field",
        ));
    }
    let max = state.media.max_bytes();
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut file: Option<Vec<u8>> = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| {
            ApiError::new(Code::InvalidParameter, format!("bad multipart body: {e}"))
        })?;
        let is_file = field.name() == Some("file");
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(Code::InvalidParameter, format!("bad multipart body: {e}"))
            })?;
            if buf.len() + chunk.len() > max {
                drain(&mut field, &mut form).await;
                return Err(ApiError::new(
                    Code::PayloadTooLarge,
                    format!("images may be at most {max} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        if is_file {
            if file.is_some() {
                return Err(ApiError::new(Code::ValidationFailed, "one file per upload"));
            }
            file = Some(buf);
        }
    }
    let bytes = file.ok_or_else(|| {
        ApiError::new(
            Code::ValidationFailed,
            "a multipart field named `file` is required",
        )
        .with_details(serde_json::json!({"file": "is required"}))
    })?;
    let media = state.media.upload(auth.0.user_id(), bytes).await?;
    Ok(HttpResponse::Created().json(MediaView::from(&media)))
}

/// How much of a refused upload is read (and dropped) before the answer,
/// and for how long.
const DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Read and drop the rest of a refused upload, so that a client still
/// sending it reads our 413 instead of a connection reset under its write
/// (seen as "broken pipe" by HTTP clients, a network error by browsers).
/// Bounded in bytes and time: past either, the answer goes and the
/// connection is cut.
async fn drain(field: &mut actix_multipart::Field, form: &mut actix_multipart::Multipart) {
    let all = async {
        let mut left = DRAIN_MAX_BYTES;
        if !drop_chunks(field, &mut left).await {
            return;
        }
        while let Some(Ok(mut next)) = form.next().await {
            if !drop_chunks(&mut next, &mut left).await {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_MAX_TIME, all).await;
}

/// Read one field to its end, counting down `left`; false once it ran out.
async fn drop_chunks(field: &mut actix_multipart::Field, left: &mut usize) -> bool {
    while let Some(Ok(chunk)) = field.next().await {
        match left.checked_sub(chunk.len()) {
            Some(l) => *left = l,
            None => return false,
        }
    }
    true
}

/// Serve an uploaded image or thumbnail (immutable: keys are never reused).
#[utoipa::path(
    tag = "market",
    params(("key" = String, Path, description = "Storage key from a media URL")),
    responses((status = 200, description = "The image"), NotFound)
)]
#[get("/media/{key:.*}")]
pub async fn serve_media(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    let bytes = state
        .media
        .storage()
        .get(&key)
        .await
        .map_err(crate::error::Refusal::from)?
        .ok_or_else(|| ApiError::not_found("media"))?;
    Ok(HttpResponse::Ok()
        .content_type(crate::service::media::content_type_of_key(&key))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(bytes))
}
