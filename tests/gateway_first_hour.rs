//! What an operator meets in the first hour, over real HTTP: the user listing filtered and
//! paged, unknown query parameters refused, process metrics on `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_support;

use gateway_support::{start_default, status_json};
use reqwest::Method;

#[tokio::test]
async fn users_are_filtered_by_tenant_searched_and_paged() {
    let gw = start_default().await;
    let a = gw.tenant("A").await;
    let b = gw.tenant("B").await;
    let mut in_a = Vec::new();
    for i in 0..5 {
        in_a.push(gw.user_in(&a, &format!("ana {i}")).await.id);
    }
    let in_b = gw.user_in(&b, "bruno").await.id;
    in_a.sort();

    // Pages of two across tenant A, following X-Next-Cursor to the end.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/admin/users?tenant_id={a}&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let response = gw.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(response.status(), 200);
        cursor = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<serde_json::Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, in_a, "every user of A once, in id order, none of B");

    let (status, found) = gw.admin_call(Method::GET, "/admin/users?q=BRUNO").await;
    assert_eq!(status, 200);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], in_b.as_str());
    let (_, tenants) = gw
        .admin_call(Method::GET, "/admin/tenants?q=b&limit=1")
        .await;
    assert_eq!(tenants.as_array().unwrap().len(), 1);

    for bad in [
        "/admin/users?tenant=x",
        "/admin/users?limit=0",
        "/admin/users?limit=many",
        "/admin/tenants?tenant_id=x",
    ] {
        let response = gw.admin(Method::GET, bad).send().await.unwrap();
        let (status, body) = status_json(response).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["success"], false, "{bad}");
        assert_eq!(body["error_code"], "VALIDATION_ERROR", "{bad}: {body}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn metrics_include_process_figures_and_the_build() {
    let gw = start_default().await;
    let text = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
        "wuts_build_info{version=\"",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    gw.stop().await;
}
