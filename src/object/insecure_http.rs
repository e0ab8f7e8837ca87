//! The HTTP client aws-sdk-s3 uses when the profile asks for `insecure_tls`: the SDK's own client
//! can trust extra CAs but cannot be told to skip verification, so this one sends the SDK's requests
//! through reqwest with certificate checks off. Only ever built on that explicit request.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;

#[derive(Debug, Clone)]
struct ReqwestConnector {
    http: reqwest::Client,
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move {
            let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, reqwest::Body::wrap(body));
            let request = reqwest::Request::try_from(request).map_err(|e| ConnectorError::user(e.into()))?;
            let response = http.execute(request).await.map_err(|e| {
                if e.is_timeout() { ConnectorError::timeout(e.into()) } else { ConnectorError::io(e.into()) }
            })?;
            let response: http::Response<reqwest::Body> = response.into();
            let (parts, body) = response.into_parts();
            let response = http::Response::from_parts(parts, SdkBody::from_body_1_x(body));
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// An SDK HTTP client that accepts any server certificate.
pub fn client(connect_timeout: Duration) -> Result<SharedHttpClient, String> {
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the insecure_tls HTTP client: {e}"))?;
    let connector = SharedHttpConnector::new(ReqwestConnector { http });
    Ok(http_client_fn(move |_: &HttpConnectorSettings, _| connector.clone()))
}
