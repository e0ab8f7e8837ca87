//! Every S3 request attempt counted ([`crate::metrics::series::s3_request`]): operation, HTTP
//! status (or none), time to the answer's headers, and the body bytes each way. An SDK interceptor
//! sees each attempt the SDK makes, its own retries included, which a wrapper around our calls
//! would not.

use std::time::Instant;

use aws_sdk_s3::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

#[derive(Debug)]
pub struct Metered;

/// When the current attempt was handed to the HTTP client, and its body's length (read before
/// it goes: the HTTP client takes the body away).
#[derive(Debug, Clone)]
struct Sent(Instant, u64);

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Metered {
    fn name(&self) -> &'static str {
        "Metered"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        let length = request
            .body()
            .content_length()
            .or_else(|| request.headers().get("content-length").and_then(|v| v.parse().ok()));
        cfg.interceptor_state().store_put(Sent(Instant::now(), length.unwrap_or(0)));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        // An attempt that failed before it was sent (signing, no credentials) is not a request.
        let Some(Sent(at, sent)) = cfg.load::<Sent>().cloned() else { return Ok(()) };
        // Counted once: a next attempt that fails before it is sent must not count this one again.
        cfg.interceptor_state().unset::<Sent>();
        let operation = cfg.load::<Metadata>().map_or("unknown", |m| m.name());
        let response = context.response();
        // A HEAD answer announces the object's length but carries no body.
        let received = response
            .filter(|_| operation != "HeadObject")
            .and_then(|r| r.headers().get("content-length"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let status = response.map(|r| r.status().as_u16());
        crate::metrics::series::s3_request(operation, status, at.elapsed(), sent, received);
        Ok(())
    }
}
