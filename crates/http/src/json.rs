//! Strict JSON request bodies and query strings: wrong content type → 415, oversize → 413,
//! malformed JSON, wrong types and unknown fields → 400 naming the problem.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::json;

/// Default request body limit (SPEC §2): 1 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 1 << 20;

/// A JSON body of type `T`, at most `LIMIT` bytes. `T` should use
/// `#[serde(deny_unknown_fields)]` so unknown fields are rejected.
pub struct JsonBody<T, const LIMIT: usize = DEFAULT_BODY_LIMIT_BYTES>(pub T);

impl<S, T, const LIMIT: usize> FromRequest<S> for JsonBody<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::unsupported_media_type());
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > LIMIT as u64) {
            return Err(ApiError::payload_too_large(LIMIT));
        }
        let limited = http_body_util::Limited::new(req.into_body(), LIMIT);
        let bytes = match limited.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return Err(ApiError::payload_too_large(LIMIT));
                }
                return Err(ApiError::invalid("could not read the request body"));
            }
        };
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON bytes into `T`, mapping serde errors to SPEC §2 errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(json_error)
}

/// Maps a serde_json error to a 400 that says what is wrong and where.
pub fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let msg = e.to_string();
    let position = json!({ "line": e.line(), "column": e.column() });
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::invalid(format!("malformed JSON: {msg}")).with_details(position)
        }
        Category::Data => {
            // serde's messages name the field between backticks: "unknown field `x`, expected ..."
            let field = ["unknown field `", "missing field `", "duplicate field `"]
                .iter()
                .find_map(|p| msg.find(p).map(|i| &msg[i + p.len()..]))
                .and_then(|rest| rest.split('`').next());
            let mut details = position;
            if let Some(f) = field {
                details["field"] = json!(f);
            }
            ApiError::invalid(format!("invalid request body: {msg}")).with_details(details)
        }
    }
}

/// A query string deserialized into `T`; errors become 400 `invalid_request`.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| QueryParams(q.0))
            .map_err(|e| ApiError::invalid(format!("invalid query string: {}", e.body_text())))
    }
}

/// Keyset paging for newest-first lists: `limit` (default 50, 1 to 1000, SPEC §2) and
/// `before_id` (exclusive; default: from the newest). Errors name the field.
pub fn page_before(limit: Option<&str>, before_id: Option<&str>) -> Result<(i64, i64), ApiError> {
    let limit = match limit {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", "limit must be 1 to 1000"))?,
    };
    let before = match before_id {
        None => i64::MAX,
        Some(b) => b
            .parse::<i64>()
            .map_err(|_| ApiError::invalid_field("before_id", "before_id must be an integer"))?,
    };
    Ok((limit, before))
}
