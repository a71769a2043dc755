//! The console's HTTP side: the pages and their security headers, and the cookie session
//! (HttpOnly, SameSite=Strict, Secure behind TLS, CSRF token on writes, sign-out, a user
//! session ended by rotating its token, an admin session acting for one user, sessions kept
//! across a restart on the same data directory).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use std::sync::Arc;

use gateway_support::{ADMIN_TOKEN, FakeDevices, start_default, start_with, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use wuts::http::GatewayConfig;
use wuts_store::gateway::GatewayStore;

/// Signs in with `token`; returns the cookie pair and the CSRF token.
async fn sign_in(gw: &gateway_support::FakeGateway, token: &str, tls: bool) -> (String, String) {
    let mut request = gw
        .http
        .post(format!("{}/console/session", gw.url))
        .json(&json!({ "token": token }));
    if tls {
        request = request.header("x-forwarded-proto", "https");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 201);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert_eq!(set_cookie.contains("Secure"), tls, "{set_cookie}");
    assert!(!set_cookie.contains(token), "the token is not the cookie");
    let body: Value = response.json().await.unwrap();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (pair, body["csrf"].as_str().unwrap().to_owned())
}

async fn call(
    gw: &gateway_support::FakeGateway,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = gw
        .http
        .request(method, format!("{}{path}", gw.url))
        .header("cookie", cookie);
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn console_pages_carry_a_strict_policy() {
    let gw = start_default().await;
    let response = gw.http.get(format!("{}/", gw.url)).send().await.unwrap();
    assert_eq!(response.url().path(), "/console", "/ leads to the console");
    for path in [
        "/console",
        "/console/app.js",
        "/console/devices.js",
        "/console/groups.js",
        "/console/communities.js",
        "/console/webhooks.js",
        "/console/app.css",
    ] {
        let response = gw
            .http
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let html = gw
        .http
        .get(format!("{}/console", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("src=\"/console/app.js\""));
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    gw.stop().await;
}

#[tokio::test]
async fn cookie_sessions_need_csrf_on_writes_and_end_on_sign_out() {
    let gw = start_default().await;
    let (status, _) = status_json(
        gw.http
            .post(format!("{}/console/session", gw.url))
            .json(&json!({"token": "wrong"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    let (cookie, csrf) = sign_in(&gw, ADMIN_TOKEN, false).await;
    let (_, tls_csrf) = sign_in(&gw, ADMIN_TOKEN, true).await;
    assert_ne!(csrf, tls_csrf, "each session its own CSRF token");
    let (status, _) = call(&gw, Method::GET, "/admin/tenants", &cookie, None, None).await;
    assert_eq!(status, 200, "reads need only the cookie");
    let new = Some(json!({"name": "T"}));
    let (status, _) = call(
        &gw,
        Method::POST,
        "/admin/tenants",
        &cookie,
        None,
        new.clone(),
    )
    .await;
    assert_eq!(status, 401, "a write without the CSRF token is refused");
    let (status, _) = call(
        &gw,
        Method::POST,
        "/admin/tenants",
        &cookie,
        Some("forged"),
        new.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, tenant) = call(
        &gw,
        Method::POST,
        "/admin/tenants",
        &cookie,
        Some(&csrf),
        new,
    )
    .await;
    assert_eq!(status, 201);
    let (status, session) = call(&gw, Method::GET, "/console/session", &cookie, None, None).await;
    assert_eq!((status, session["role"].as_str()), (200, Some("admin")));

    // An admin session acts for one user on the user routes, naming it.
    let user = gw.user_in(tenant["id"].as_str().unwrap(), "u").await;
    let response = gw
        .http
        .get(format!("{}/devices", gw.url))
        .header("cookie", &cookie)
        .header("x-wuts-user", &user.id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _) = call(&gw, Method::GET, "/devices", &cookie, None, None).await;
    assert_eq!(status, 401, "without naming a user");

    // Sign-out needs the CSRF token too, then the cookie opens nothing.
    let (status, _) = call(&gw, Method::DELETE, "/console/session", &cookie, None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &gw,
        Method::DELETE,
        "/console/session",
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(&gw, Method::GET, "/admin/tenants", &cookie, None, None).await;
    assert_eq!(status, 401);
    gw.stop().await;
}

#[tokio::test]
async fn a_user_session_sees_only_its_user_and_ends_when_the_token_rotates() {
    let gw = start_default().await;
    let tenant = gw.tenant("T").await;
    let user = gw.user_in(&tenant, "<b>u</b>").await;
    let (cookie, _) = sign_in(&gw, &user.token, false).await;
    let (status, session) = call(&gw, Method::GET, "/console/session", &cookie, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(session["role"], "user");
    assert_eq!(session["name"], "<b>u</b>");
    let (status, _) = call(&gw, Method::GET, "/admin/users", &cookie, None, None).await;
    assert_eq!(status, 401, "no admin routes");
    let (status, devices) = call(&gw, Method::GET, "/devices", &cookie, None, None).await;
    assert_eq!(status, 200);
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1);

    gw.admin_call(Method::POST, &format!("/admin/users/{}/token", user.id))
        .await;
    let (status, _) = call(&gw, Method::GET, "/devices", &cookie, None, None).await;
    assert_eq!(status, 401, "rotating the token ends the session");
    gw.stop().await;
}

#[tokio::test]
async fn docs_show_every_route_without_scripts_under_the_same_policy() {
    let gw = start_default().await;
    let doc: Value = gw
        .http
        .get(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = gw
        .http
        .get(format!("{}/docs", gw.url))
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let row = format!(
                "<td class=\"m\">{}</td><td><code>{path}</code></td>",
                method.to_uppercase()
            );
            assert!(html.contains(&row), "{method} {path} in the page as served");
        }
    }
    for asset in [
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/init.js",
        "/docs/assets/LICENSE",
    ] {
        let response = gw
            .http
            .get(format!("{}{asset}", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            html.contains(asset) || asset.ends_with("LICENSE"),
            "{asset} linked"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_restart_on_the_same_data_directory_but_sign_outs_stay() {
    let dir = tempfile::tempdir().unwrap();
    let open =
        || -> Arc<dyn GatewayStore> { Arc::new(wuts_store::SledStore::open(dir.path()).unwrap()) };
    let gw = start_with(FakeDevices::new(), open(), GatewayConfig::default()).await;
    let (kept, kept_csrf) = sign_in(&gw, ADMIN_TOKEN, false).await;
    let (ended, ended_csrf) = sign_in(&gw, ADMIN_TOKEN, false).await;
    let (status, _) = call(
        &gw,
        Method::DELETE,
        "/console/session",
        &ended,
        Some(&ended_csrf),
        None,
    )
    .await;
    assert_eq!(status, 204);
    gw.stop().await;

    let gw = start_with(FakeDevices::new(), open(), GatewayConfig::default()).await;
    let (status, session) = call(&gw, Method::GET, "/console/session", &kept, None, None).await;
    assert_eq!(status, 200, "still signed in after the restart: {session}");
    assert_eq!(session["role"], "admin");
    assert_eq!(session["csrf"], kept_csrf.as_str(), "the same CSRF token");
    let (status, _) = call(
        &gw,
        Method::POST,
        "/admin/tenants",
        &kept,
        Some(&kept_csrf),
        Some(json!({"name": "After restart"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = call(&gw, Method::GET, "/console/session", &ended, None, None).await;
    assert_eq!(status, 401, "a sign-out outlives the restart");
    gw.stop().await;
}
