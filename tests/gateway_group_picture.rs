//! `POST /groups/{jid}/picture` end to end over real HTTP against the in-process sandbox: a
//! JPEG that fits goes as it came (the sandbox stores exactly those bytes), a large one is
//! resized and re-encoded first, and what is not a usable JPEG (a PNG, bad base64, too small)
//! is 400 with nothing sent; a member of a locked group is refused by WhatsApp's rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod gateway_group_support;

use base64::Engine;
use gateway_group_support::*;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageBuffer, Rgb};
use serde_json::json;
use sha2::{Digest, Sha256};
use wuts::http::ResponseStyle;

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        let v = (((x / 8) ^ (y / 8)) as u8).wrapping_mul(37);
        Rgb([v, (x % 256) as u8, (y % 256) as u8])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&DynamicImage::ImageRgb8(img))
        .unwrap();
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_are_checked_shrunk_and_stored() {
    let w = world(41, ResponseStyle::Wuts).await;
    let jid = team(&w).await;
    let path = format!("/groups/{jid}/picture");
    let post = reqwest::Method::POST;
    let stored = |w: &World| {
        let g = w.sim.groups().into_iter().find(|g| g.jid == jid).unwrap();
        (g.picture_id, g.picture_sha256)
    };

    // What is not a usable JPEG is 400, and WhatsApp hears nothing of it.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    for (body, field) in [
        (json!({"image_base64": b64(&png)}), "image_base64"),
        (json!({"image_base64": "not base64!"}), "image_base64"),
        (
            json!({"image_base64": b64(&jpeg(100, 100))}),
            "image_base64",
        ),
        (json!({}), "image_base64"),
        (json!({"image": "x"}), "image"),
    ] {
        let (status, answer) = call(&w.gw, &w.ana, post.clone(), &path, Some(body), None).await;
        expect_error(status, &answer, 400, "VALIDATION_ERROR");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    let (status, answer) = call(
        &w.gw,
        &w.ana,
        post.clone(),
        "/groups/nope/picture",
        Some(json!({"image_base64": b64(&png)})),
        None,
    )
    .await;
    expect_error(status, &answer, 400, "VALIDATION_ERROR");
    let fields: Vec<&str> = answer["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["image_base64", "jid"], "{answer}");
    assert_eq!(stored(&w), (None, None));

    // One that fits goes as it came: the sandbox holds exactly those bytes.
    let small = jpeg(320, 320);
    let body = json!({"image_base64": format!("data:image/jpeg;base64,{}", b64(&small))});
    let (status, answer) = call(
        &w.gw,
        &w.ana,
        post.clone(),
        &path,
        Some(body),
        Some("pic-1"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["resized"], false);
    let id = answer["picture_id"].as_str().unwrap().to_owned();
    assert_eq!(stored(&w), (Some(id.clone()), Some(hex(&small))));

    // A large one is resized to 640 pixels and re-encoded before it is sent.
    let large = jpeg(1280, 960);
    let (status, answer) = call(
        &w.gw,
        &w.ana,
        post.clone(),
        &path,
        Some(json!({"image_base64": b64(&large)})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["width"], &answer["height"], &answer["resized"]),
        (&json!(640), &json!(480), &json!(true))
    );
    let (new_id, digest) = stored(&w);
    assert_ne!(new_id.as_deref(), Some(id.as_str()));
    assert_ne!(digest, Some(hex(&large)));

    // In a locked group only admins may; Bruno is a member.
    let (status, answer) = call(
        &w.gw,
        &w.ana,
        reqwest::Method::PATCH,
        &format!("/groups/{jid}"),
        Some(json!({"locked": true})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        &w.gw,
        &w.bruno,
        post,
        &path,
        Some(json!({"image_base64": b64(&small)})),
        None,
    )
    .await;
    expect_error(status, &answer, 403, "NOT_GROUP_ADMIN");
    w.gw.stop().await;
}
