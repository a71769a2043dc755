//! The console in a real browser: headless Chromium driven through WebDriver (`chromedriver`)
//! against the gateway and the in-process sandbox. Sign in, create a tenant and a user (named
//! like an XSS payload: it must show as text), pair by the QR code the page draws (the sandbox's
//! phone scans the code the page shows), see the device connected, create a group, sign out,
//! and sign in as the user, who sees only their own device. Screenshots of each page go to
//! `target/console-screenshots/`.
//!
//! Without Chromium and chromedriver the test prints SKIPPED; where `CI` is set it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;

#[path = "console_support/mod.rs"]
mod console_support;

use console_support::{Browser, Skip};
use fantoccini::Locator;
use gateway_e2e_support::{ADMIN_TOKEN, Options, sandbox, start};
use serde_json::Value;

const XSS_TENANT: &str = "<img src=x onerror=alert(1)>";
const XSS_USER: &str = "<script>alert(2)</script>Ana";
const XSS_GROUP: &str = "Launch <b onmouseover=alert(3)>team</b>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pairs_a_device_creates_a_group_and_signs_out() {
    let browser = match Browser::launch().await {
        Ok(browser) => browser,
        Err(Skip(why)) => return console_support::skipped(&why),
    };
    let sim = sandbox(31).await;
    let dir = tempfile::tempdir().unwrap();
    // Codes that change every few seconds, so the page is seen replacing one.
    let ttl = std::time::Duration::from_secs(6);
    let options = Options {
        qr_ttl: Some((ttl, ttl)),
        ..Options::default()
    };
    let gw = start(&sim, dir.path(), options).await;
    let c = &browser.client;

    // `/` leads to the console, which asks for a token.
    c.goto(&format!("{}/", gw.url)).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/console")
    );
    browser.visible("#sign-in").await;
    browser.shot("01-sign-in").await;
    browser.fill("#token", "not-a-token").await;
    browser.click("#sign-in-form button[type=submit]").await;
    browser.text_contains("#sign-in-error", "not valid").await;
    browser.fill("#token", ADMIN_TOKEN).await;
    browser.click("#sign-in-form button[type=submit]").await;
    browser.visible("#tenant-create").await;

    // A tenant and a user named like markup: shown as text, nothing runs.
    browser.fill("#tenant-name", XSS_TENANT).await;
    browser.click("#tenant-create button[type=submit]").await;
    browser.text_contains("#tenant-rows", XSS_TENANT).await;
    browser.visible("#user-tenant option").await;
    browser.fill("#user-name", XSS_USER).await;
    browser.click("#user-create button[type=submit]").await;
    let token = browser.text_of(".token-value").await;
    assert_eq!(token.len(), 36, "a user token is shown once: {token:?}");
    browser.text_contains("#user-rows", XSS_USER).await;
    browser.no_markup_ran().await;
    browser.shot("02-tenants-and-users").await;
    browser.at_phone_width("03-tenants-and-users-phone").await;

    // The device page: pair, and the page draws the QR code live.
    c.find(Locator::Css("#user-rows a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.visible("#device-state[data-state]").await;
    browser.click("#action-pair").await;
    browser
        .visible("#qr-box:not([hidden]) #qr-image[data-code]:not([data-code=''])")
        .await;
    browser.text_contains("#qr-countdown", "changes in").await;
    browser.shot("04-device-qr").await;
    let first = browser.attribute("#qr-image", "data-code").await;
    // When the code rotates, the page draws the new one.
    browser
        .until(&format!(
            "const c = document.getElementById('qr-image').dataset.code; return !!c && c !== {};",
            serde_json::to_string(&first).unwrap()
        ))
        .await;
    let code = browser.attribute("#qr-image", "data-code").await;
    assert_ne!(code, first);
    let natural: Value = c
        .execute(
            "return document.getElementById('qr-image').naturalWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(natural.as_u64().unwrap_or(0) > 0, "the QR image is drawn");

    // The sandbox's phone scans the code the page shows.
    sim.scan(&code, "5511999990000")
        .await
        .expect("the phone scans");
    browser
        .visible("#device-state[data-state='connected']")
        .await;
    browser.text_contains("#device-jid", "5511999990000").await;
    browser.shot("05-device-connected").await;

    // Groups of the device: create one, see it listed, open it.
    browser.click("#groups-link").await;
    browser.visible("#group-create").await;
    browser.fill("#group-name", XSS_GROUP).await;
    browser
        .fill("#group-participants", "+55 11 98888-0001")
        .await;
    browser.click("#group-create button[type=submit]").await;
    browser.text_contains("#group-list", XSS_GROUP).await;
    browser.text_contains("#group-open", "@g.us").await;
    browser.no_markup_ran().await;
    browser.shot("06-groups").await;

    c.goto(&format!("{}/console#/devices", gw.url))
        .await
        .unwrap();
    browser.text_contains("#device-rows", "connected").await;
    browser.shot("07-devices").await;

    // Sign out: the cookie no longer opens anything.
    browser.click("#sign-out").await;
    browser.visible("#sign-in").await;
    let status: Value = c
        .execute_async(
            "const done = arguments[0];
             fetch('/admin/tenants', {credentials: 'same-origin'}).then(r => done(r.status));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, 401, "signed out");
    browser.shot("08-signed-out").await;

    // The user's own token: only their device, no admin pages.
    browser.fill("#token", &token).await;
    browser.click("#sign-in-form button[type=submit]").await;
    browser.text_contains("#device-rows", "connected").await;
    let rows = c
        .find_all(Locator::Css("#device-rows tr"))
        .await
        .unwrap()
        .len();
    assert_eq!(rows, 1);
    assert!(
        !c.find(Locator::Css("#nav-users"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    browser.shot("09-user-devices").await;

    browser.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_list_every_route_and_try_it_works_against_the_sandbox() {
    let browser = match Browser::launch().await {
        Ok(browser) => browser,
        Err(Skip(why)) => return console_support::skipped(&why),
    };
    let sim = sandbox(32).await;
    let dir = tempfile::tempdir().unwrap();
    let gw = start(&sim, dir.path(), Options::default()).await;
    let c = &browser.client;
    let doc: Value = gw
        .http
        .get(format!("{}/openapi.json", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Swagger UI draws one block per operation of `paths` and one per entry of `webhooks`
    // (the events the gateway sends, OpenAPI 3.1).
    let count = |section: &str| -> usize {
        doc[section].as_object().map_or(0, |items| {
            items
                .values()
                .map(|item| item.as_object().unwrap().len())
                .sum()
        })
    };
    let operations = count("paths") + count("webhooks");

    c.goto(&format!("{}/docs", gw.url)).await.unwrap();
    browser.visible(".opblock").await;
    // Swagger UI has drawn: the server-rendered summary steps aside.
    browser
        .until("return document.getElementById('summary').hidden;")
        .await;
    let blocks = c.find_all(Locator::Css(".opblock")).await.unwrap().len();
    assert_eq!(blocks, operations, "every route is listed");
    browser.shot("10-docs").await;

    // The admin token goes in "Authorize"; then try GET /admin/sandbox.
    browser.click(".auth-wrapper .authorize").await;
    browser
        .fill(".modal-ux .auth-container input", ADMIN_TOKEN)
        .await;
    browser
        .click(".modal-ux .auth-container .auth-btn-wrapper .authorize")
        .await;
    browser.click(".modal-ux .btn-done").await;
    browser
        .click("#operations-Admin-get_admin_sandbox .opblock-summary-control")
        .await;
    browser
        .click("#operations-Admin-get_admin_sandbox .execute")
        .await;
    browser
        .text_contains(
            "#operations-Admin-get_admin_sandbox .live-responses-table tbody .response-col_status",
            "200",
        )
        .await;
    browser
        .text_contains(
            "#operations-Admin-get_admin_sandbox .live-responses-table tbody .response-col_description",
            "control_url",
        )
        .await;
    browser.shot("11-docs-try-it").await;

    // Markdown in descriptions is rendered (`code` becomes <code>).
    let code_spans = c
        .find_all(Locator::Css(".info .renderedMarkdown code"))
        .await
        .unwrap()
        .len();
    assert!(code_spans > 0, "Markdown rendered");

    browser.close().await;
    gw.stop().await;
}
