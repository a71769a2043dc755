//! `/docs`: the API reference. Swagger UI (vendored under `swagger-ui/` with its licence,
//! compiled in) renders `/openapi.json` interactively: every route with request and response
//! examples, a place for the token ("Authorize"), "Try it out", Markdown rendered. The page
//! itself is rendered here from the same document, so every route and its summary show at
//! once, before and without any script.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::openapi::openapi_document;

const BUNDLE_JS: &str = include_str!("swagger-ui/swagger-ui-bundle.js");
const BUNDLE_CSS: &str = include_str!("swagger-ui/swagger-ui.css");
const LICENSE: &str = include_str!("swagger-ui/LICENSE");
const INIT_JS: &str = include_str!("init.js");

/// The docs routes (the state type is the router's).
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(page))
        .route(
            "/docs/assets/swagger-ui-bundle.js",
            get(|| async { asset(BUNDLE_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/docs/assets/swagger-ui.css",
            get(|| async { asset(BUNDLE_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/docs/assets/LICENSE",
            get(|| async { asset(LICENSE, "text/plain; charset=utf-8") }),
        )
        .route(
            "/docs/assets/init.js",
            get(|| async { asset(INIT_JS, "text/javascript; charset=utf-8") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// Text made safe for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Who may call an operation, from its `security`.
fn auth_of(op: &Value) -> &'static str {
    match op["security"].as_array() {
        Some(list) if list.is_empty() => "open",
        Some(list) if list.iter().any(|s| s.get("adminToken").is_some()) => "admin token",
        Some(list) if list.iter().any(|s| s.get("consoleSession").is_some()) => "console session",
        Some(_) => "user token",
        None => "",
    }
}

/// The server-rendered summary: every route, its method, who may call it, and what it does.
fn summary(doc: &Value) -> String {
    let mut rows = String::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, op) in item {
                rows.push_str(&format!(
                    "<tr><td class=\"m\">{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                    escape(&method.to_uppercase()),
                    escape(path),
                    escape(auth_of(op)),
                    escape(op["description"].as_str().unwrap_or_default()),
                ));
            }
        }
    }
    rows
}

/// `GET /docs`.
async fn page() -> Html<String> {
    let doc = openapi_document();
    let title = escape(doc["info"]["title"].as_str().unwrap_or("API"));
    let version = escape(doc["info"]["version"].as_str().unwrap_or_default());
    let description = escape(doc["info"]["description"].as_str().unwrap_or_default());
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<script src="/docs/assets/swagger-ui-bundle.js" defer></script>
<script src="/docs/assets/init.js" defer></script>
</head>
<body>
<div id="swagger-ui"></div>
<section id="summary" class="swagger-ui">
<div class="wrapper">
<h1>{title} <small>{version}</small></h1>
<p>{description}</p>
<p>The interactive reference (examples, a place for your token, "Try it out") loads below when
scripts run. The OpenAPI 3.1 document is at <a href="/openapi.json">/openapi.json</a>; the
console at <a href="/console">/console</a>. Swagger UI is served from this gateway under its
<a href="/docs/assets/LICENSE">Apache-2.0 licence</a>.</p>
<table>
<thead><tr><th>Method</th><th>Path</th><th>Auth</th><th>What it does</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</div>
</section>
</body>
</html>
"#,
        rows = summary(&doc),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<img src=x onerror='a'>&\""),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn summary_lists_every_operation() {
        let doc = openapi_document();
        let rows = summary(&doc);
        let operations: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(rows.matches("<tr>").count(), operations);
        assert!(rows.contains("<code>/admin/users/{id}/qr</code>"));
    }
}
