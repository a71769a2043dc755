//! The JSON control API over HTTP: scan, devices, phones, faults, groups, and its errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim_support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sim_support::*;

const PHONE: &str = "5511999999999";

async fn post(url: String, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn pairing_faults_and_lookups_over_http() {
    let sb = sandbox().await;
    let control = sb.control_url();
    let c = Companion::new();
    let (mut client, refs) = register(&sb, &c).await;

    // Scan over HTTP while the companion answers.
    let body = json!({"qr": c.qr(&refs[0]), "phone": PHONE});
    let ((status, paired), ()) = tokio::join!(post(format!("{control}/scan"), body), async {
        let success = client.recv().await;
        client.send(&c.answer_pair_success(&success)).await;
        client.until_end().await;
    });
    assert_eq!(status, StatusCode::OK, "{paired}");
    let jid = paired["jid"].as_str().unwrap().to_owned();
    assert_eq!(jid, format!("{PHONE}:1@s.whatsapp.net"));
    assert!(paired["lid"].as_str().unwrap().ends_with(":1@lid"));

    let (mut client, success) = login(&sb, &c, &jid).await;
    assert_eq!(success.tag, "success");
    let devices: Value = reqwest::get(format!("{control}/devices"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(devices[0]["jid"], json!(jid));
    assert_eq!(devices[0]["connected"], json!(true));
    assert_eq!(devices[0]["removed"], json!(false));

    // Phone behaviour, read back.
    let r = reqwest::Client::new()
        .put(format!("{control}/phones/5511000000002"))
        .json(&json!({"on_add": "invite_only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let b: Value = reqwest::get(format!("{control}/phones/5511000000002"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        b,
        json!({"platform": "android", "business_name": null, "on_add": "invite_only"})
    );

    // A fault: stream error 503.
    let (status, _) = post(
        format!("{control}/faults"),
        json!({"kind": "stream_error", "device": jid, "error": "503"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (stanzas, _) = client.until_end().await;
    assert_eq!(stanzas[0].to_string(), r#"<stream:error code="503"/>"#);

    // Faults on a device that is not connected, and malformed ones.
    let (status, body) = post(
        format!("{control}/faults"),
        json!({"kind": "drop", "device": "1:1@s.whatsapp.net"}),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("not_connected"))
    );
    let (status, body) = post(format!("{control}/faults"), json!({"kind": "explode"})).await;
    assert_eq!(body["error"], json!("bad_json"));
    assert!(status.is_client_error());

    // Scan errors.
    let (status, body) = post(
        format!("{control}/scan"),
        json!({"qr": c.qr("2@gone"), "phone": PHONE}),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("unknown_ref"))
    );
    let (status, body) = post(
        format!("{control}/scan"),
        json!({"qr": "x", "phone": PHONE}),
    )
    .await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_qr"))
    );
    let (status, body) = post(format!("{control}/scan"), json!({"qr": "x"})).await;
    assert_eq!(body["error"], json!("bad_json"));
    assert!(status.is_client_error());

    let info: Value = reqwest::get(format!("{control}/info"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info, sb.info());
    assert_eq!(info["ws_url"], json!(sb.ws_url()));

    // Groups (none yet), then unlinking the device.
    let groups: Value = reqwest::get(format!("{control}/groups"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(groups, json!([]));
    let r = reqwest::Client::new()
        .delete(format!("{control}/devices/{jid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let devices: Value = reqwest::get(format!("{control}/devices"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(devices[0]["removed"], json!(true));
    let r = reqwest::Client::new()
        .delete(format!("{control}/devices/9:9@s.whatsapp.net"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn put(url: String, body: Value) -> StatusCode {
    let r = reqwest::Client::new()
        .put(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    r.status()
}

async fn get(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// `on_add` reads as README spells it (`not_on_whatsapp`), and as serde first spelled it; the
/// rule is then in force: that number cannot scan.
#[tokio::test]
async fn phones_take_not_on_whatsapp_as_documented() {
    let sb = sandbox().await;
    let control = sb.control_url();
    for (phone, spelling) in [
        ("5511000000003", "not_on_whatsapp"),
        ("5511000000004", "not_on_whats_app"),
    ] {
        let status = put(
            format!("{control}/phones/{phone}"),
            json!({"on_add": spelling}),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{spelling}");
        let b = get(format!("{control}/phones/{phone}")).await;
        assert_eq!(b["on_add"], json!("not_on_whatsapp"), "{spelling}");
    }
    let c = Companion::new();
    let (_client, refs) = register(&sb, &c).await;
    let body = json!({"qr": c.qr(&refs[0]), "phone": "5511000000003"});
    let (status, body) = post(format!("{control}/scan"), body).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("not_on_whatsapp"))
    );
}

/// A fault without `device` is for every device connected at that moment; `clear_iq_faults`
/// without it clears every device's rules.
#[tokio::test]
async fn faults_without_a_device_reach_every_connected_device() {
    let sb = sandbox().await;
    let faults = format!("{}/faults", sb.control_url());
    let (status, body) = post(faults.clone(), json!({"kind": "drop"})).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("not_connected"))
    );

    let (_, _, mut a) = online(&sb, PHONE).await;
    let (_, _, mut b) = online(&sb, "5511888888888").await;
    // Each device's next ping is withheld: the one after it is answered first.
    let withhold_one = json!({"kind": "withhold_iq", "xmlns": "w:p", "count": 1});
    let (status, body) = post(faults.clone(), withhold_one).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for client in [&mut a, &mut b] {
        let lost = client.iq("w:p", "get", vec![]);
        client.send(&lost).await;
        let ping = client.iq("w:p", "get", vec![]);
        let id = attr(&ping, "id");
        client.send(&ping).await;
        assert_eq!(attr(&client.recv().await, "id"), id);
    }
    // Withhold everything, then clear every device's rules: pings are answered again.
    let (status, _) = post(faults.clone(), json!({"kind": "withhold_iq"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post(faults.clone(), json!({"kind": "clear_iq_faults"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for client in [&mut a, &mut b] {
        let ping = client.iq("w:p", "get", vec![]);
        let reply = client.request(ping).await;
        assert_eq!(attr(&reply, "type").as_deref(), Some("result"), "{reply}");
    }

    let outage = json!({"kind": "stream_error", "error": "503"});
    let (status, _) = post(faults.clone(), outage).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for client in [&mut a, &mut b] {
        let (stanzas, _) = client.until_end().await;
        assert_eq!(stanzas[0].to_string(), r#"<stream:error code="503"/>"#);
    }
}
