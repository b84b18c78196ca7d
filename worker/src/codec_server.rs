//! `handoff codec-server`: the `/encode` and `/decode` endpoints Temporal UI
//! calls to show encrypted payloads to operators. Every request needs the
//! bearer token; browsers are let in from the configured UI origin only.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tower_http::cors::CorsLayer;
use tracing::info;

use crate::codec::Keys;
use crate::exit::Exit;

/// What the server needs.
#[derive(Clone)]
pub(crate) struct CodecServer {
    pub(crate) keys: Keys,
    pub(crate) token: String,
}

/// Payloads as Temporal's codec protocol writes them: protobuf JSON, bytes
/// in base64.
#[derive(Debug, Serialize, Deserialize)]
struct WirePayloads {
    #[serde(default)]
    payloads: Vec<WirePayload>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WirePayload {
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    data: String,
}

impl WirePayload {
    fn into_payload(self) -> Result<Payload, String> {
        let decode = |field: &str, text: &str| {
            STANDARD
                .decode(text)
                .map_err(|_| format!("{field}: not base64"))
        };
        let mut metadata = HashMap::new();
        for (key, value) in self.metadata {
            let bytes = decode(&format!("metadata.{key}"), &value)?;
            metadata.insert(key, bytes);
        }
        Ok(Payload {
            metadata,
            data: decode("data", &self.data)?,
            ..Default::default()
        })
    }

    fn from_payload(payload: &Payload) -> Self {
        Self {
            metadata: payload
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), STANDARD.encode(v)))
                .collect(),
            data: STANDARD.encode(&payload.data),
        }
    }
}

/// The routes, with CORS for `origin`.
pub(crate) fn router(server: CodecServer, origin: &str) -> anyhow::Result<Router> {
    let origin = HeaderValue::from_str(origin)
        .map_err(|_| Exit::config(format!("--cors-origin {origin:?} is not a valid origin")))?;
    let cors = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-namespace"),
        ])
        .allow_credentials(true);
    Ok(Router::new()
        .route("/encode", post(encode))
        .route("/decode", post(decode))
        .route("/healthz", get(|| async { "ok" }))
        .layer(cors)
        .with_state(server))
}

/// Serves until Ctrl-C or SIGTERM.
pub(crate) async fn run(
    server: CodecServer,
    listen: SocketAddr,
    origin: &str,
) -> anyhow::Result<()> {
    let app = router(server, origin)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Exit::config(format!("cannot listen on {listen}: {e}")))?;
    info!(address = %listen, cors_origin = %origin, "codec server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::worker::wait_for_shutdown(None))
        .await?;
    Ok(())
}

fn authorized(server: &CodecServer, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", server.token);
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type Reply = Result<Json<WirePayloads>, (StatusCode, String)>;

async fn encode(
    State(server): State<CodecServer>,
    headers: HeaderMap,
    Json(body): Json<WirePayloads>,
) -> Reply {
    transform(&server, &headers, body, |keys, payload| {
        Ok(keys.encrypt(&payload))
    })
}

async fn decode(
    State(server): State<CodecServer>,
    headers: HeaderMap,
    Json(body): Json<WirePayloads>,
) -> Reply {
    transform(&server, &headers, body, |keys, payload| {
        keys.decrypt(payload).map_err(|e| e.to_string())
    })
}

fn transform(
    server: &CodecServer,
    headers: &HeaderMap,
    body: WirePayloads,
    step: impl Fn(&Keys, Payload) -> Result<Payload, String>,
) -> Reply {
    if !authorized(server, headers) {
        return Err((StatusCode::UNAUTHORIZED, "bearer token required".into()));
    }
    let mut payloads = Vec::with_capacity(body.payloads.len());
    for wire in body.payloads {
        let payload = wire
            .into_payload()
            .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let done = step(&server.keys, payload).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        payloads.push(WirePayload::from_payload(&done));
    }
    Ok(Json(WirePayloads { payloads }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;

    fn server() -> CodecServer {
        CodecServer {
            keys: Keys::parse(&format!("k1:{}", STANDARD.encode([3u8; 32]))).unwrap(),
            token: "s3cret".into(),
        }
    }

    fn request(path: &str, token: Option<&str>, body: &str) -> Request<Body> {
        let mut builder = Request::post(path)
            .header("content-type", "application/json")
            .header("origin", "http://127.0.0.1:8233");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    async fn call(request: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let app = router(server(), "http://127.0.0.1:8233").unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn encode_then_decode_gives_the_payload_back() {
        let plain =
            r#"{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"eyJhIjoxfQ=="}]}"#;
        let (status, headers, sealed) = call(request("/encode", Some("s3cret"), plain)).await;
        assert_eq!(status, StatusCode::OK, "{sealed}");
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://127.0.0.1:8233"
        );
        assert!(!sealed.contains("eyJhIjoxfQ=="));
        let (status, _, opened) = call(request("/decode", Some("s3cret"), &sealed)).await;
        assert_eq!(status, StatusCode::OK);
        let opened: WirePayloads = serde_json::from_str(&opened).unwrap();
        assert_eq!(opened.payloads[0].data, "eyJhIjoxfQ==");
    }

    #[tokio::test]
    async fn a_request_without_the_token_is_refused() {
        let body = r#"{"payloads":[]}"#;
        assert_eq!(
            call(request("/decode", None, body)).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(request("/decode", Some("guess"), body)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn the_ui_origin_passes_the_preflight_and_others_do_not() {
        let preflight = |origin: &str| {
            Request::builder()
                .method("OPTIONS")
                .uri("/decode")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,x-namespace,content-type",
                )
                .body(Body::empty())
                .unwrap()
        };
        let (_, headers, _) = call(preflight("http://127.0.0.1:8233")).await;
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://127.0.0.1:8233"
        );
        // The one allowed origin is always named, so a browser on another
        // origin sees a mismatch and refuses.
        let (_, headers, _) = call(preflight("http://evil.example")).await;
        assert_ne!(
            headers
                .get("access-control-allow-origin")
                .map(|v| v.as_bytes()),
            Some(b"http://evil.example".as_slice())
        );
    }

    #[tokio::test]
    async fn malformed_payloads_get_400_naming_the_field() {
        let body = r#"{"payloads":[{"metadata":{},"data":"%%%"}]}"#;
        let (status, _, text) = call(request("/decode", Some("s3cret"), body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("data"), "{text}");
    }
}
