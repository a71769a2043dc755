//! The WUTS device and session routes with the user token, end to end over real HTTP against
//! the in-process sandbox: a user with two devices, pairing by `GET /qr`, status, disconnect,
//! connect, logout and pairing again, and groups created on each device.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

use gateway_e2e_support::{E2eGateway, Options, User, WAIT, sandbox, start, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use wuts::sim::SandboxHandle;

async fn call(gw: &E2eGateway, user: &User, method: Method, path: &str) -> (u16, Value) {
    status_json(
        gw.http
            .request(method, format!("{}{path}", gw.url))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Pairs the device `device_id` through `GET /qr` and the sandbox phone; waits until
/// `GET /status` says connected.
async fn pair_by_qr(
    gw: &E2eGateway,
    sim: &SandboxHandle,
    user: &User,
    device_id: &str,
    phone: &str,
) {
    let (status, body) = call(gw, user, Method::GET, &format!("/qr?device_id={device_id}")).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert!(
        data["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(data["cached"], false);
    // Asked again, the same code comes from the cache.
    let (_, again) = call(gw, user, Method::GET, &format!("/qr?device_id={device_id}")).await;
    assert_eq!(again["data"]["qr_code"], data["qr_code"]);
    assert_eq!(again["data"]["cached"], true);
    let (_, shown) = call(
        gw,
        user,
        Method::GET,
        &format!("/qr/status?device_id={device_id}"),
    )
    .await;
    assert_eq!(shown["data"]["exists"], true, "{shown}");
    sim.scan(data["qr_code"].as_str().unwrap(), phone)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, s) = call(
                gw,
                user,
                Method::GET,
                &format!("/status?device_id={device_id}"),
            )
            .await;
            if s["data"]["connected"] == true {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("connected after the scan");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_drives_two_devices_with_its_token() {
    let sim = sandbox(41).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    let ana = gw.user_in(&tenant, "Ana").await;
    let bia = gw.user_in(&tenant, "Bia").await;

    // The user's first slot is listed as `default`; a second device is created by name.
    let (status, listed) = call(&gw, &ana, Method::GET, "/devices").await;
    assert_eq!(status, 200, "{listed}");
    let first = listed["devices"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed["devices"][0]["name"], "default");
    let (status, created) = status_json(
        gw.http
            .post(format!("{}/devices", gw.url))
            .bearer_auth(&ana.token)
            .json(&json!({"name": "Vendas"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let second = created["device"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["device"]["connected"], false);
    let (_, mine) = call(&gw, &ana, Method::GET, "/user/devices").await;
    assert_eq!(mine["data"]["count"], 2, "{mine}");

    // With two devices, routes must say which; another user's device does not exist.
    let (status, body) = call(&gw, &ana, Method::GET, "/status").await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("DEVICE_ID_REQUIRED"))
    );
    let (status, body) = gw.create(&ana.token, json!({"name": "which?"})).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (400, Some("DEVICE_ID_REQUIRED"))
    );
    let (status, _) = call(
        &gw,
        &bia,
        Method::GET,
        &format!("/status?device_id={second}"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = call(
        &gw,
        &ana,
        Method::POST,
        &format!("/connect?device_id={second}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["needs_qr"], true, "no credentials yet");

    // Pair both, create a group on each.
    pair_by_qr(&gw, &sim, &ana, &first, "5511999990201").await;
    pair_by_qr(&gw, &sim, &ana, &second, "5511999990202").await;
    let (status, body) = call(&gw, &ana, Method::GET, &format!("/qr?device_id={first}")).await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_ALREADY_PAIRED"))
    );
    for (device, phone) in [(&first, "5511999990201"), (&second, "5511999990202")] {
        let (status, body) = status_json(
            gw.groups(&ana.token)
                .query(&[("device_id", device.as_str())])
                .json(&json!({"name": format!("from {phone}")}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["group"]["owner"], format!("{phone}@s.whatsapp.net"));
    }
    let (_, s) = call(
        &gw,
        &ana,
        Method::GET,
        &format!("/status?device_id={second}"),
    )
    .await;
    assert_eq!(s["data"]["jid"], "5511999990202@s.whatsapp.net", "{s}");
    assert_eq!(s["data"]["phone_number"], "5511999990202");

    // Disconnect keeps the credentials; connect comes back without a QR code.
    let (status, _) = call(
        &gw,
        &ana,
        Method::POST,
        &format!("/disconnect?device_id={second}"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, s) = call(
        &gw,
        &ana,
        Method::GET,
        &format!("/status?device_id={second}"),
    )
    .await;
    assert_eq!(s["data"]["status"], "disconnected", "{s}");
    let (status, body) = call(
        &gw,
        &ana,
        Method::POST,
        &format!("/connect?device_id={second}"),
    )
    .await;
    assert_eq!(
        (status, body["data"]["needs_qr"].as_bool()),
        (200, Some(false))
    );

    // Logout wipes them: the device pairs again by QR.
    let (status, _) = call(
        &gw,
        &ana,
        Method::POST,
        &format!("/logout?device_id={second}"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, s) = call(
        &gw,
        &ana,
        Method::GET,
        &format!("/status?device_id={second}"),
    )
    .await;
    assert_eq!(s["data"]["status"], "logged_out", "{s}");
    pair_by_qr(&gw, &sim, &ana, &second, "5511999990203").await;

    // Purging the second device forgets it; the first stays.
    let (status, _) = call(
        &gw,
        &ana,
        Method::DELETE,
        &format!("/devices/{second}?purge=true"),
    )
    .await;
    assert_eq!(status, 200);
    let (_, listed) = call(&gw, &ana, Method::GET, "/devices").await;
    assert_eq!(listed["devices"].as_array().unwrap().len(), 1, "{listed}");
    let (status, body) = gw
        .create(&ana.token, json!({"name": "only one again"}))
        .await;
    assert_eq!(status, 201, "{body}");
    gw.stop().await;
}

/// A new user's first requests arriving together record one `default` device, not one each
/// (which would make every later request ask for a `device_id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_record_one_default_device() {
    let sim = sandbox(43).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    // Warm the connection pool so the first requests of each user really overlap.
    let warm = (0..32).map(|_| gw.http.get(format!("{}/healthz", gw.url)).send());
    futures_util::future::join_all(warm).await;
    for round in 0..4 {
        let user = gw.user_in(&tenant, &format!("Ana {round}")).await;
        let calls = (0..32).map(|_| call(&gw, &user, Method::GET, "/status"));
        for (status, body) in futures_util::future::join_all(calls).await {
            assert_eq!(status, 200, "{body}");
        }
        let (_, listed) = call(&gw, &user, Method::GET, "/devices").await;
        assert_eq!(listed["devices"].as_array().unwrap().len(), 1, "{listed}");
    }
}
