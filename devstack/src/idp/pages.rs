//! The few HTML pages a human sees when driving the demo from a browser: Azure's sign-in and error
//! screens reduced to plain forms and links.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::error::AzureError;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A complete page around already-escaped `body` HTML.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:3em auto}}</style></head>\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title)
    );
    (status, Html(html)).into_response()
}

/// Azure shows these errors in the browser instead of redirecting, because the redirect target itself is
/// not trusted (unknown app, unregistered redirect URI, unknown tenant).
pub(crate) fn error_page(err: &AzureError) -> Response {
    let body = format!(
        "<p>Sorry, but we're having trouble signing you in.</p>\n<p><code>{}</code></p>",
        escape(&err.headline())
    );
    page(err.status(), "Sign in error", &body)
}

/// Azure redirects with 302 Found (axum's `Redirect::to` would send 303).
pub(crate) fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}
