//! The console in a real browser: headless Chromium driven through WebDriver (`chromedriver`)
//! against the gateway and the in-process sandbox. Sign in, create a tenant and a user (named
//! like an XSS payload: it must show as text), pair by the QR code the page draws (the sandbox's
//! phone scans the code the page shows), see the device connected, create a group, sign out,
//! and sign in as the user, who sees only their own device. On the way: a group's page (promote
//! a member, read the invite link, rename it), a community's page (create one, link a group of
//! the device, see it listed beside the announcement group, unlink it), the webhooks page (configure a webhook to a
//! loopback receiver, see an event delivered in the log, redeliver it) and pairing a second
//! user's device by phone code. Screenshots of each page, at desktop and phone width, go to
//! `target/console-screenshots/`.
//!
//! Without Chromium and chromedriver the test prints SKIPPED; where `CI` is set it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_e2e_support;
mod webhook_receiver;

#[path = "console_support/mod.rs"]
mod console_support;

#[path = "console_support/communities.rs"]
mod communities_page;

use console_support::{Browser, Skip};
use fantoccini::Locator;
use gateway_e2e_support::{ADMIN_TOKEN, E2eGateway, Options, sandbox, start};
use serde_json::Value;
use webhook_receiver::{Receiver, verify_standard};
use wuts::http::WebhookSettings;
use wuts::sim::SandboxHandle;

const XSS_TENANT: &str = "<img src=x onerror=alert(1)>";
const XSS_USER: &str = "<script>alert(2)</script>Ana";
const XSS_GROUP: &str = "Launch <b onmouseover=alert(3)>team</b>";
const XSS_COMMUNITY: &str = "Bairro <b onclick=alert(4)>novo</b>";

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
        // The test's webhook receiver listens on loopback (`--webhook-allow-private`).
        webhooks: Some(WebhookSettings {
            allow_private: true,
            retry_base: std::time::Duration::from_millis(200),
            ..WebhookSettings::default()
        }),
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
    browser.at_phone_width("01b-sign-in-phone").await;
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
    browser.at_phone_width("05b-device-phone").await;

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
    browser.at_phone_width("06b-groups-phone").await;
    group_page(&browser, &sim).await;
    communities_page::community_page(&browser).await;
    webhooks_page(&browser, &gw).await;
    pair_by_code(&browser, &gw, &sim).await;

    c.goto(&format!("{}/console#/devices", gw.url))
        .await
        .unwrap();
    browser.text_contains("#device-rows", "connected").await;
    browser.shot("07-devices").await;
    browser.at_phone_width("07b-devices-phone").await;

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

/// Clicks the first element matching `css` from a script: rows that refresh themselves are
/// replaced between a WebDriver find and its click, a script's click is one step.
async fn click_now(browser: &Browser, css: &str) {
    browser
        .until(&format!(
            "const e = document.querySelector({}); if (!e) return false; e.click(); return true;",
            serde_json::to_string(css).unwrap()
        ))
        .await;
}

/// Scrolls the element matching `css` to the top of the window (for a screenshot of it).
async fn scroll_to(browser: &Browser, css: &str) {
    browser
        .until(&format!(
            "const e = document.querySelector({}); if (!e) return false; \
             e.scrollIntoView({{block: 'start'}}); return true;",
            serde_json::to_string(css).unwrap()
        ))
        .await;
}

/// The group just created (on the groups page): open it, promote its member, read the invite
/// link, rename it and turn on join approval, approve a simulated member's request, set
/// disappearing messages, and leave it.
async fn group_page(browser: &Browser, sim: &SandboxHandle) {
    browser.click("#group-list a").await;
    browser.text_contains("#group-title", XSS_GROUP).await;
    let member = "#participant-rows tr[data-jid^='5511988880001@']";
    browser
        .visible(&format!("{member}[data-role='member'] .promote"))
        .await;
    browser
        .visible("#participant-rows tr[data-role='owner']")
        .await;
    browser.no_markup_ran().await;
    click_now(browser, &format!("{member} .promote")).await;
    browser
        .visible(&format!("{member}[data-role='admin'] .demote"))
        .await;
    browser.click("#invite-show").await;
    browser
        .text_contains("#group-invite", "https://chat.whatsapp.com/")
        .await;
    browser.fill("#group-edit-name", "Launch team").await;
    browser.click("#group-join-approval").await;
    browser.click("#group-settings button[type=submit]").await;
    browser
        .until("return document.getElementById('group-title').textContent === 'Launch team';")
        .await;
    browser
        .until(
            "return [...document.querySelectorAll('#group-info dt')].some(dt => \
             dt.textContent === 'Admins approve new members' && \
             dt.nextElementSibling.textContent === 'yes');",
        )
        .await;

    // A simulated member asks to join by the link; the console approves.
    let url = browser.client.current_url().await.unwrap();
    let jid = url
        .fragment()
        .and_then(|f| f.rsplit('/').next())
        .unwrap()
        .replace("%40", "@");
    let asked: Value = reqwest::Client::new()
        .post(format!("{}/join-request", sim.control_url()))
        .json(&serde_json::json!({"group": jid, "phone": "5511988880009"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asked["pending"], true, "{asked}");
    browser.click("#requests-refresh").await;
    let request = "#request-rows tr[data-jid^='5511988880009@']";
    browser.visible(&format!("{request} .approve")).await;
    click_now(browser, &format!("{request} .approve")).await;
    browser
        .visible("#participant-rows tr[data-jid^='5511988880009@']")
        .await;
    browser
        .until("return !document.querySelector(\"#request-rows tr[data-jid^='5511988880009@']\");")
        .await;
    browser
        .click("#group-ephemeral option[value='86400']")
        .await;
    browser
        .click("#group-ephemeral-form button[type=submit]")
        .await;
    browser.text_contains("#group-info", "24 hours").await;
    scroll_to(browser, "#group-title").await;
    browser.shot("12-group").await;
    browser.at_phone_width("12b-group-phone").await;

    // Leave it (after a confirmation): the device's list no longer has it.
    browser.click("#group-leave").await;
    browser.client.accept_alert().await.unwrap();
    browser.visible("#group-create").await;
    browser
        .until(
            "return !!document.querySelector('#group-list li') && \
                !document.getElementById('group-list').textContent.includes('Launch team');",
        )
        .await;
}

/// The device's webhooks page: point a webhook at a loopback receiver (the secret is shown
/// once), make the device disconnect and connect, see both events delivered in the log, and
/// redeliver one: the receiver gets the same event again, signed.
async fn webhooks_page(browser: &Browser, gw: &E2eGateway) {
    let mut receiver = Receiver::start().await;
    browser.click("#view p a[href^='#/device/']").await;
    browser.click("#webhooks-link").await;
    browser
        .text_contains("#webhook-current", "No webhook is configured")
        .await;
    browser.visible("#webhook-events input:checked").await;
    browser.fill("#webhook-url", &receiver.url).await;
    browser.click("#webhook-form button[type=submit]").await;
    let secret = browser.text_of("#webhook-secret-value").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser
        .text_contains("#webhook-current", "has its own webhook")
        .await;

    // A header set through the API (the form does not edit headers) survives a save here.
    let url = browser.client.current_url().await.unwrap();
    let user_id = url.fragment().and_then(|f| f.rsplit('/').next()).unwrap();
    gw.admin_json(
        reqwest::Method::POST,
        &format!("/admin/users/{user_id}/webhook"),
        serde_json::json!({
            "webhook_url": receiver.url,
            "enabled_events": ["device.connected", "device.disconnected"],
            "headers": {"X-Team": "launch"},
        }),
    )
    .await;
    browser.client.refresh().await.unwrap();
    browser.text_contains("#webhook-headers", "X-Team").await;
    browser.click("#webhook-form button[type=submit]").await;
    browser.text_contains("#toast", "Webhook saved").await;

    // An event: the device disconnects and connects again; the first delivery fails once.
    receiver
        .script
        .fail_next
        .store(1, std::sync::atomic::Ordering::SeqCst);
    browser.click("#view p a[href^='#/device/']").await;
    browser.click("#action-disconnect").await;
    browser
        .visible("#device-state[data-state='disconnected']")
        .await;
    browser.click("#action-connect").await;
    browser
        .visible("#device-state[data-state='connected']")
        .await;
    let connected = loop {
        let got = receiver.next_accepted().await;
        verify_standard(&secret, &got).unwrap();
        assert_eq!(got.header("x-team"), "launch", "the API's header was kept");
        if got.json()["event"] == "device.connected" {
            break got.header("webhook-id").to_owned();
        }
    };

    browser.click("#webhooks-link").await;
    let row = format!("#delivery-rows tr[data-delivery='{connected}']");
    // The log refreshes itself (rows are replaced), so waits read it from a script.
    browser
        .until(&format!(
            "return !!document.querySelector({});",
            serde_json::to_string(&format!("{row}[data-status='delivered']")).unwrap()
        ))
        .await;
    // The failed first attempt is in the log: two attempts, delivered.
    browser
        .until(
            "return [...document.querySelectorAll('#delivery-rows tr')].some(r => \
             r.textContent.includes('device.disconnected') && \
             r.querySelector('.attempts').textContent === '2' && r.dataset.status === 'delivered');",
        )
        .await;
    scroll_to(browser, "#deliveries-title").await;
    browser.shot("13-webhooks").await;
    browser.at_phone_width("13b-webhooks-phone").await;

    click_now(browser, &format!("{row} .redeliver")).await;
    let again = receiver.next_accepted().await;
    assert_eq!(
        again.header("webhook-id"),
        connected,
        "the same event again"
    );
    verify_standard(&secret, &again).unwrap();
    browser
        .until(&format!(
            "const r = document.querySelector({}); return !!r && r.dataset.status === 'delivered' \
             && r.querySelector('.attempts').textContent === '2';",
            serde_json::to_string(&row).unwrap()
        ))
        .await;
    scroll_to(browser, "#deliveries-title").await;
    browser.shot("14-webhooks-redelivered").await;
    receiver.stop();
}

/// A second user's first device (of two), paired by phone code: the page shows the code and its
/// expiry, the sandbox's phone types it, the device becomes connected.
async fn pair_by_code(browser: &Browser, gw: &E2eGateway, sim: &SandboxHandle) {
    let tenant = gw.tenant("Bia's shop").await;
    let bia = gw.user_in(&tenant, "Bia").await;
    // A second device: the console must name the first one (the admin routes' device) when
    // it acts through the user's routes.
    let response = gw
        .http
        .post(format!("{}/devices", gw.url))
        .bearer_auth(&bia.token)
        .json(&serde_json::json!({"name": "Spare phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    browser
        .client
        .goto(&format!("{}/console#/device/{}", gw.url, bia.id))
        .await
        .unwrap();
    browser.text_contains("#device-title", "Bia").await;
    let phone = "5511999990002";
    browser.fill("#pair-phone", phone).await;
    browser.click("#paircode-submit").await;
    let code = browser.text_of("#pair-code-value").await;
    assert_eq!(
        code.chars().filter(char::is_ascii_alphanumeric).count(),
        8,
        "{code}"
    );
    browser
        .text_contains("#pair-code-expiry", "Valid for")
        .await;
    // The code is what the operator follows now: no QR code beside it.
    browser
        .until("return document.getElementById('qr-box').hidden;")
        .await;
    browser.shot("15-pair-code").await;
    sim.type_code(phone, &code)
        .await
        .expect("the phone types it");
    browser
        .visible("#device-state[data-state='connected']")
        .await;
    browser.text_contains("#device-jid", phone).await;
    browser.shot("16-paired-by-code").await;
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
    browser.at_phone_width("10b-docs-phone").await;

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
