//! The console's community pages in the browser, a step of `console_browser.rs` (which owns
//! the browser session and the helpers used here).

use serde_json::Value;

use super::console_support::Browser;
use super::{XSS_COMMUNITY, scroll_to};

/// Communities of the device (from the groups page, where the device is in no group any more):
/// create a group to link, create a community with a description, open it (its announcement
/// group is listed and marked), add a participant and remove it, link the group, see it listed, unlink it.
pub async fn community_page(browser: &Browser) {
    browser.fill("#group-name", "Street team").await;
    browser
        .fill("#group-participants", "+55 11 98888-0001")
        .await;
    browser.click("#group-create button[type=submit]").await;
    browser.text_contains("#group-list", "Street team").await;
    browser.click("#view p a[href^='#/device/']").await;
    browser.click("#communities-link").await;
    browser
        .text_contains("#community-list", "no community yet")
        .await;
    browser.fill("#community-name", XSS_COMMUNITY).await;
    browser
        .fill("#community-description", "Vizinhos da rua")
        .await;
    browser.click("#community-create button[type=submit]").await;
    browser
        .text_contains("#community-list", XSS_COMMUNITY)
        .await;
    browser
        .text_contains("#community-open", "Vizinhos da rua")
        .await;
    browser.no_markup_ran().await;

    // Its page: the announcement group is there and cannot be unlinked; Street team can be
    // linked (the community and its announcement group are not offered).
    browser.click("#community-list a").await;
    browser
        .text_contains("#community-title", XSS_COMMUNITY)
        .await;
    let news = "#subgroup-rows tr[data-announcement='true']";
    browser.text_contains(news, "announcements").await;
    let unlinkable: Value = browser
        .client
        .execute(
            &format!(
                "return !!document.querySelector({});",
                serde_json::to_string(&format!("{news} .unlink")).unwrap()
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        unlinkable, false,
        "the announcement group has no unlink button"
    );
    browser
        .text_contains("#community-link-group", "Street team")
        .await;
    let offered: Value = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#community-link-group option')]\
             .map(o => o.textContent).join('\\n');",
            vec![],
        )
        .await
        .unwrap();
    let offered = offered.as_str().unwrap();
    assert!(
        !offered.contains("Bairro"),
        "neither the community nor its announcement group is offered: {offered}"
    );
    // A refusal reads as the API's code and sentence, not as JSON.
    browser.fill("#community-participants-add", "abc").await;
    browser
        .click("#community-participants-form button[type=submit]")
        .await;
    browser
        .text_contains("#view .error", "VALIDATION_ERROR")
        .await;
    let error = browser.text_of("#view .error").await;
    assert!(
        error.contains("participants[0]") && !error.contains('{'),
        "{error}"
    );
    browser
        .fill("#community-participants-add", "+55 11 98888-0003")
        .await;
    browser
        .click("#community-participants-form button[type=submit]")
        .await;
    browser
        .visible("#community-participant-rows tr[data-jid^='5511988880003@'] .remove")
        .await;
    // Removed again (after a confirmation).
    browser
        .click("#community-participant-rows tr[data-jid^='5511988880003@'] .remove")
        .await;
    browser.client.accept_alert().await.unwrap();
    browser
        .until(
            "return !document.querySelector(\
             \"#community-participant-rows tr[data-jid^='5511988880003@']\");",
        )
        .await;
    browser
        .click("#community-link-form button[type=submit]")
        .await;
    let street = "#subgroup-rows tr[data-announcement='false']";
    browser.text_contains(street, "Street team").await;
    browser.text_contains("#toast", "Group linked").await;
    scroll_to(browser, "#community-title").await;
    browser.shot("17-community").await;
    browser.at_phone_width("17b-community-phone").await;

    // Unlinked (after a confirmation): only the announcement group is left, and Street team
    // can be linked again.
    // A WebDriver click: the confirmation blocks a script's click until it is answered.
    browser.click(&format!("{street} .unlink")).await;
    browser.client.accept_alert().await.unwrap();
    browser
        .until(
            "return document.querySelectorAll('#subgroup-rows tr').length === 1 && \
             !!document.querySelector(\"#subgroup-rows tr[data-announcement='true']\");",
        )
        .await;
    browser
        .text_contains("#community-link-group", "Street team")
        .await;
    browser.click("#communities-back").await;
    browser.visible("#community-create").await;
}
