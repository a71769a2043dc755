//! Pairing by phone-number code end to end over real HTTP: the gateway (real registry, sled,
//! engine) against the in-process sandbox, whose phone types the code through its control API.
//! A wrong code then the right one, an expired code then a fresh one, a login again after a
//! restart with the saved credentials, and the admin's device-level routes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

use std::time::Duration;

use gateway_e2e_support::{E2eGateway, Options, User, WAIT, sandbox, start, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use wuts::sim::{Sandbox, SandboxConfig, SandboxHandle, Timing};

async fn call(
    gw: &E2eGateway,
    user: &User,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    status_json(
        gw.http
            .request(method, format!("{}{path}", gw.url))
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The sandbox's phone types `code`: `POST /control/paircode`.
async fn type_code(gw: &E2eGateway, sim: &SandboxHandle, phone: &str, code: &str) -> (u16, Value) {
    status_json(
        gw.http
            .post(format!("{}/paircode", sim.control_url()))
            .json(&json!({"phone": phone, "code": code}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A code of the same shape that is not `code`.
fn other_code(code: &str) -> String {
    let first = if code.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &code[1..])
}

async fn until_connected(gw: &E2eGateway, user: &User) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            let (_, s) = call(gw, user, Method::GET, "/status", json!(null)).await;
            if s["data"]["connected"] == true {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("connected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_code_then_the_right_one_pairs_and_a_restart_logs_in_again() {
    let sim = sandbox(61).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    let ana = gw.user_in(&tenant, "Ana").await;
    let phone = "5511999990601";

    // The number is checked before anything is sent.
    for (bad, field) in [
        (json!({"phone": "12345"}), "phone"),
        (json!({}), "phone"),
        (json!({"phone": phone, "extra": 1}), "extra"),
    ] {
        let (status, body) = call(&gw, &ana, Method::POST, "/paircode", bad).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error_code"], "VALIDATION_ERROR", "{body}");
        assert_eq!(body["details"][0]["field"], field, "{body}");
    }
    let (_, status) = call(&gw, &ana, Method::GET, "/status", json!(null)).await;
    assert_eq!(
        status["data"]["status"], "unpaired",
        "nothing started: {status}"
    );

    let mut events = gw.events(&ana).await;
    assert_eq!(events.next().await.0, "state");
    let (status, body) = call(
        &gw,
        &ana,
        Method::POST,
        "/paircode",
        json!({"phone": "+55 11 99999-0601"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    let code = data["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 9);
    assert_eq!(&code[4..5], "-");
    assert_eq!(data["phone"], phone);
    assert_eq!(data["cached"], false);
    assert!(data["expires_in"].as_u64().unwrap() > 150, "{data}");
    assert!(
        data["instructions"]
            .as_str()
            .unwrap()
            .contains("phone number")
    );
    assert_eq!(events.wait_for("pair_code").await["code"], code.as_str());
    // Asked again: the same code, from the cache.
    let (_, again) = call(
        &gw,
        &ana,
        Method::POST,
        "/paircode",
        json!({"phone": phone}),
    )
    .await;
    assert_eq!(again["data"]["code"], code.as_str());
    assert_eq!(again["data"]["cached"], true);

    // A mistyped code is refused; the companion keeps waiting; the right one pairs.
    let (status, body) = type_code(&gw, &sim, phone, &other_code(&code)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (422, Some("wrong_code")),
        "{body}"
    );
    let (_, s) = call(&gw, &ana, Method::GET, "/status", json!(null)).await;
    assert_eq!(s["data"]["status"], "pairing");
    let (status, paired) = type_code(&gw, &sim, phone, &code.to_lowercase()).await;
    assert_eq!(status, 200, "{paired}");
    let jid = paired["jid"].as_str().unwrap().to_owned();
    assert_eq!(events.wait_for("paired").await["jid"], jid.as_str());
    events.wait_for("connected").await;
    let status = until_connected(&gw, &ana).await;
    assert_eq!(status["data"]["phone_number"], phone);
    assert!(status["data"]["last_seen"].as_str().unwrap().ends_with('Z'));
    // Paired: no more codes.
    let (status, body) = call(
        &gw,
        &ana,
        Method::POST,
        "/paircode",
        json!({"phone": phone}),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (409, Some("DEVICE_ALREADY_PAIRED"))
    );
    // The code is spent on the sandbox's side too.
    let (status, _) = type_code(&gw, &sim, phone, &code).await;
    assert_eq!(status, 404);

    // A restart logs in again with the saved credentials.
    gw.stop().await;
    let gw = start(&sim, dir.path(), Options::default()).await;
    gw.connected(&ana).await;
    let status = until_connected(&gw, &ana).await;
    assert_eq!(status["data"]["jid"], format!("{phone}@s.whatsapp.net"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused_and_a_fresh_one_pairs() {
    let sim = Sandbox::start(SandboxConfig {
        seed: Some(62),
        timing: Timing {
            pair_code: Duration::from_secs(3),
            ..Timing::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    let bia = gw.user_in(&tenant, "Bia").await;
    let phone = "5511999990602";
    let path = format!("/admin/users/{}/paircode", bia.id);
    let first = gw
        .admin_json(Method::POST, &path, json!({"phone": phone}))
        .await;
    let code = first["code"].as_str().unwrap().to_owned();
    assert_eq!(first["cached"], false, "{first}");
    // The sandbox's phone accepts a code for 3 s.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let (status, body) = type_code(&gw, &sim, phone, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("code_expired")),
        "{body}"
    );

    // A fresh code on the same pairing connection.
    let fresh = gw
        .admin_json(
            Method::POST,
            &format!("{path}?refresh=true"),
            json!({"phone": phone}),
        )
        .await;
    let fresh_code = fresh["code"].as_str().unwrap().to_owned();
    assert_eq!(fresh["cached"], false, "{fresh}");
    assert_ne!(fresh_code, code);
    let (status, body) = type_code(&gw, &sim, phone, &fresh_code).await;
    assert_eq!(status, 200, "{body}");
    until_connected(&gw, &bia).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_drives_a_device_by_its_id() {
    let sim = sandbox(63).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let tenant = gw.tenant("Loja").await;
    let caio = gw.user_in(&tenant, "Caio").await;
    let (status, created) = call(
        &gw,
        &caio,
        Method::POST,
        "/devices",
        json!({"name": "Vendas"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let second = created["device"]["id"].as_str().unwrap().to_owned();

    let (status, listed) = gw
        .admin_call(Method::GET, &format!("/admin/users/{}/devices", caio.id))
        .await;
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "Vendas"]);

    // Pair the second device by code through its own admin routes.
    let mut events = gw
        .events_at(&format!("/admin/devices/{second}/events"))
        .await;
    assert_eq!(events.next().await.1["state"], "unpaired");
    let phone = "5511999990603";
    let code = gw
        .admin_json(
            Method::POST,
            &format!("/admin/devices/{second}/paircode"),
            json!({"phone": phone}),
        )
        .await;
    assert_eq!(code["device_id"], second.as_str(), "{code}");
    let typed = code["code"].as_str().unwrap();
    assert_eq!(events.wait_for("pair_code").await["code"], typed);
    let (status, body) = type_code(&gw, &sim, phone, typed).await;
    assert_eq!(status, 200, "{body}");
    events.wait_for("connected").await;
    // The first device is untouched.
    let (_, first) = gw
        .admin_call(Method::GET, &format!("/admin/users/{}", caio.id))
        .await;
    assert_eq!(first["state"], "unpaired", "{first}");

    // Log it out, pair it again by QR code through the device routes.
    let (status, out) = gw
        .admin_call(Method::POST, &format!("/admin/devices/{second}/logout"))
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["device"]["status"], "logged_out", "{out}");
    events.wait_for("logged_out").await;
    let (status, started) = gw
        .admin_call(Method::POST, &format!("/admin/devices/{second}/pair"))
        .await;
    assert_eq!(status, 202, "{started}");
    let qr = events.wait_for("qr").await;
    let (status, shown) = gw
        .admin_call(Method::GET, &format!("/admin/devices/{second}/qr"))
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["code"], qr["code"]);
    sim.scan(qr["code"].as_str().unwrap(), phone).await.unwrap();
    events.wait_for("connected").await;

    // Unknown ids are 404.
    let (status, _) = gw
        .admin_call(Method::POST, "/admin/devices/no-such-device/logout")
        .await;
    assert_eq!(status, 404);
    gw.stop().await;
}
