//! The HTTP front of the MinIO stand-in: STS calls (`POST /` with a form) go to [`Sts`], everything else
//! to the s3s service. Every request is logged for tests, and HEAD errors carry MinIO's
//! `x-minio-error-code` header, since a HEAD response has no body to carry the code.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use s3s::Body;
use s3s::service::S3Service;
use serde::Serialize;

use super::auth::{RequestNote, query_param};
use super::sts::Sts;
use crate::faults::Faults;

/// Largest STS form accepted: Azure tokens with many groups run to several KB; MinIO reads up to 1 MiB.
const MAX_STS_BODY: usize = 1 << 20;

#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub time: String,
    pub method: String,
    pub path: String,
    pub query: String,
    /// S3 operation name (`GetObject`, `ListObjectsV2`, ...) or the STS action.
    pub op: String,
    /// Empty for unsigned requests (STS, anonymous).
    pub access_key: String,
    pub status: u16,
    /// The error code of a refusal (`InvalidAccessKeyId`, `AccessDenied`, ...); empty on success.
    pub code: String,
}

#[derive(Default)]
pub struct RequestLog(Mutex<Vec<RequestRecord>>);

impl RequestLog {
    pub fn push(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.since(0)
    }
    /// The records from the `from`th on (none when there are not that many yet).
    pub fn since(&self, from: usize) -> Vec<RequestRecord> {
        self.0.lock().unwrap().get(from..).map(<[RequestRecord]>::to_vec).unwrap_or_default()
    }
    /// How many requests were logged so far: the index the next one gets.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// How a request was answered, for the log.
struct Answer<'a> {
    op: String,
    access_key: String,
    status: u16,
    code: &'a str,
}

impl<'a> Answer<'a> {
    /// An answer the front gave itself, before any signature was looked at.
    fn unsigned(op: &str, status: u16, code: &'a str) -> Self {
        Answer { op: op.to_string(), access_key: String::new(), status, code }
    }
}

pub struct Front {
    pub s3: S3Service,
    pub sts: Arc<Sts>,
    pub log: Arc<RequestLog>,
    pub faults: Arc<Faults>,
}

/// What the front answers with: s3s's body, or one cut short on purpose.
pub type FrontBody = BoxBody<Bytes, std::io::Error>;

fn boxed(body: Body) -> FrontBody {
    body.map_err(|e| std::io::Error::other(e.to_string())).boxed()
}

impl Front {
    /// Serves one request, with whatever faults are switched on. An `Err` makes hyper cut the
    /// connection without an answer (the endpoint "is down").
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<FrontBody>, std::io::Error> {
        let mut resp = self.answer(req).await?;
        // MinIO names itself in every answer (cmd/generic-handlers.go addCustomHeaders: `Server: MinIO`);
        // clients such as `ssofs doctor` tell servers apart by it.
        resp.headers_mut().insert(hyper::header::SERVER, hyper::header::HeaderValue::from_static("MinIO"));
        Ok(resp)
    }

    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Result<Response<FrontBody>, std::io::Error> {
        if self.faults.s3_down.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("S3 endpoint stopped (devstack fault)"));
        }
        let latency = self.faults.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        }
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        if self.faults.html_replies.load(Ordering::SeqCst) {
            self.record(&method, path, query, Answer::unsigned("", 200, ""));
            let page = "<!DOCTYPE html>\n<html><head><title>Sign in to continue</title></head><body><h1>Network login \
                        required</h1><p>Please sign in to the guest network.</p></body></html>\n";
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/html; charset=utf-8")
                .body(boxed(Body::from(page.to_string())))
                .expect("static response parts"));
        }
        let truncate = self.faults.truncated_replies.load(Ordering::SeqCst);
        let sts = is_sts(&req);
        let trailer = req
            .headers()
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("STREAMING-") && v.ends_with("-TRAILER"));
        if trailer && self.faults.no_trailing_checksums.load(Ordering::SeqCst) {
            // What RGW 16 answers (rgw_auth_s3.cc cannot verify a trailer it does not know).
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>XAmzContentSHA256Mismatch</Code><Message></Message><Resource>{path}</Resource><RequestId>devstack</RequestId></Error>"
            );
            self.record(&method, path, query, Answer::unsigned("", 400, "XAmzContentSHA256Mismatch"));
            return Ok(Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header("content-type", "application/xml")
                .body(boxed(Body::from(xml)))
                .expect("static response parts"));
        }
        let object_get = !sts
            && method == Method::GET
            && path.trim_start_matches('/').split_once('/').is_some_and(|(_, key)| !key.is_empty());
        if object_get && self.faults.deny_get_object.load(Ordering::SeqCst) {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied.</Message><Resource>{path}</Resource><RequestId>devstack</RequestId></Error>"
            );
            let access_key = signed_access_key(&req).unwrap_or_default();
            self.record(
                &method,
                path,
                query,
                Answer { op: "GetObject".into(), access_key, status: 403, code: "AccessDenied" },
            );
            return Ok(Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header("content-type", "application/xml")
                .body(boxed(Body::from(xml)))
                .expect("static response parts"));
        }
        if !sts && method == Method::GET && path == "/" && self.faults.owned_buckets_only.load(Ordering::SeqCst) {
            let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>federated</ID><DisplayName>federated</DisplayName></Owner><Buckets></Buckets></ListAllMyBucketsResult>".to_string();
            let access_key = signed_access_key(&req).unwrap_or_default();
            self.record(&method, path, query, Answer { op: "ListBuckets".into(), access_key, status: 200, code: "" });
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/xml")
                .body(boxed(Body::from(xml)))
                .expect("static response parts"));
        }
        let injected = if sts && self.faults.sts_down.load(Ordering::SeqCst) {
            Some(("AssumeRoleWithWebIdentity", "ServiceUnavailable", "STS is unavailable (devstack fault)."))
        } else if !sts && Faults::roll(&self.faults.slowdown_permille) {
            Some(("", "SlowDown", "Please reduce your request rate."))
        } else {
            None
        };
        if let Some((op, code, message)) = injected {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><Resource>{path}</Resource><RequestId>devstack</RequestId></Error>"
            );
            let resp = Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header("content-type", "application/xml")
                .header("retry-after", "1")
                .body(boxed(Body::from(xml)))
                .expect("static response parts");
            self.record(&method, path, query, Answer::unsigned(op, 503, code));
            return Ok(resp);
        }
        let resp = self.serve(req).await;
        if truncate && !sts && resp.status().is_success() {
            return Ok(truncated(resp).await);
        }
        if method == Method::GET && resp.status().is_success() && Faults::roll(&self.faults.drop_permille) {
            return Ok(cut_halfway(resp));
        }
        Ok(resp.map(boxed))
    }

    fn record(&self, method: &Method, path: String, query: String, answer: Answer<'_>) {
        let Answer { op, access_key, status, code } = answer;
        self.log.push(RequestRecord {
            time: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            method: method.to_string(),
            path,
            query,
            op,
            access_key,
            status,
            code: code.to_string(),
        });
    }

    async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let signed_key = signed_access_key(&req);
        let (resp, op, access_key) = if is_sts(&req) {
            let (resp, action) = self.sts(req).await;
            (resp, action, String::new())
        } else {
            let note = Arc::new(RequestNote::default());
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(note.clone());
            let resp = match self.s3.call(Request::from_parts(parts, Body::from(body))).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = ?e, "s3 service failed");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                }
            };
            let resp = if method == Method::HEAD { minio_head_error(resp).await } else { resp };
            let op = note.op.lock().unwrap().clone().unwrap_or_default();
            let ak = note.access_key.lock().unwrap().clone().or(signed_key).unwrap_or_default();
            (resp, op, ak)
        };
        let (resp, code) = error_code(resp).await;
        self.record(&method, path, query, Answer { op, access_key, status: resp.status().as_u16(), code: &code });
        resp
    }

    async fn sts(&self, req: Request<Incoming>) -> (Response<Body>, String) {
        let query = req.uri().query().unwrap_or("").to_string();
        let body = match http_body_util::Limited::new(req.into_body(), MAX_STS_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return (plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"), String::new()),
        };
        let mut params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        params.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(&query).unwrap_or_default());
        let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
        let reply = self.sts.handle(&params).await;
        let resp = Response::builder()
            .status(reply.status)
            .header("content-type", "application/xml")
            .body(Body::from(reply.body))
            .expect("static response parts");
        (resp, action)
    }
}

/// Sends the headers and the first half of the body, then fails the stream, so the client sees the
/// connection cut in the middle of the response.
fn cut_halfway(resp: Response<Body>) -> Response<FrontBody> {
    let (parts, body) = resp.into_parts();
    let length: u64 =
        parts.headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut budget = length / 2;
    let frames = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
        let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()))?;
        if budget == 0 {
            return Err(std::io::Error::other("connection dropped (devstack fault)"));
        }
        let take = (chunk.len() as u64).min(budget) as usize;
        budget -= take as u64;
        Ok(Frame::data(chunk.slice(..take)))
    });
    Response::from_parts(parts, StreamBody::new(frames).boxed())
}

/// The first half of the body, sent as if it were all of it (Content-Length of the half; other
/// headers, Content-Range among them, unchanged).
async fn truncated(resp: Response<Body>) -> Response<FrontBody> {
    let (mut parts, body) = resp.into_parts();
    let whole = match http_body_util::BodyExt::collect(body).await {
        Ok(c) => c.to_bytes(),
        Err(e) => return Response::from_parts(parts, boxed(Body::from(format!("devstack: {e}")))),
    };
    let half = whole.slice(..whole.len() / 2);
    parts.headers.insert("content-length", half.len().into());
    Response::from_parts(parts, boxed(Body::from(half)))
}

/// MinIO serves STS on `POST /` with a form body (or `Action=` in the query).
fn is_sts(req: &Request<Incoming>) -> bool {
    if req.method() != Method::POST || req.uri().path() != "/" {
        return false;
    }
    let form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    form || req.uri().query().is_some_and(|q| q.contains("Action="))
}

/// The access key of a SigV4-signed request, for the log when the request fails before the access
/// check (bad signature, expired credentials).
fn signed_access_key(req: &Request<Incoming>) -> Option<String> {
    let from_header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .map(str::to_string);
    from_header.or_else(|| {
        let q = req.uri().query()?;
        query_param(q, "X-Amz-Credential")?.split('/').next().map(str::to_string)
    })
}

/// MinIO's writeErrorResponseHeadersOnly: the error code and description go into headers on HEAD.
async fn minio_head_error(resp: Response<Body>) -> Response<Body> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    if let Some(code) = xml_field(&text, "Code").and_then(|c| c.parse().ok()) {
        parts.headers.insert("x-minio-error-code", code);
    }
    if let Some(desc) = xml_field(&text, "Message").and_then(|m| m.parse().ok()) {
        parts.headers.insert("x-minio-error-desc", desc);
    }
    Response::from_parts(parts, Body::empty())
}

/// The code of a refusal, for the request log: from MinIO's header on HEAD, else from the XML body
/// (an error document is small: read whole, then handed on unchanged).
async fn error_code(resp: Response<Body>) -> (Response<Body>, String) {
    if resp.status().as_u16() < 400 {
        return (resp, String::new());
    }
    if let Some(code) = resp.headers().get("x-minio-error-code").and_then(|v| v.to_str().ok()) {
        let code = code.to_string();
        return (resp, code);
    }
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let code = xml_field(&String::from_utf8_lossy(&bytes), "Code").unwrap_or_default();
    (Response::from_parts(parts, Body::from(bytes)), code)
}

fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].to_string())
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder().status(status).body(Body::from(text.to_string())).expect("static response parts")
}
