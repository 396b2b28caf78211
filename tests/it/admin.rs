//! The operator page, `GET /admin` (INTERFACE.md section 10; issue 14 items 4 and 5):
//! how it is served, and an operator's session driven in a real browser (headless
//! Chromium over WebDriver, [`Browser`]) against the real daemon and a test receiver.
//!
//! The browser scenario checks, in order: sign in; the account tree with webhook and
//! disabled counts; an account's webhooks with the auto-disabled one; a webhook's failed
//! attempts; the bulk re-enable from the page; the status bar's log sequence and
//! metrics (rates from `/metrics`, or "metrics unavailable" while the daemon has none).
//! Then the steps that need routes being built elsewhere, each failing until its route
//! lands on main:
//! - attempt items carrying `id` (the page's `data-attempt-id`): the resend work;
//! - `PUT …/webhooks/{ID}/recover`: the recover form, and the delivery arriving;
//! - `PUT …/attempts/{ATTEMPT_ID}/resend`: the resend button, and the delivery arriving.
//!
//! Each view is saved as a PNG in the test's temp dir (kept, with its path printed, when
//! the test fails); `PISTON_ADMIN_SCREENSHOTS=docs/admin` refreshes the README's copies.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::receiver::TestReceiver;
use crate::support::*;

/// The daemon's flags: loopback receivers, quick retries, and a hook disabled after two
/// failed tries (one event with one retry).
const FLAGS: &[&str] = &[
    "--allow-private-targets",
    "--retry-base-ms",
    "20",
    "--failure-threshold",
    "2",
];

/// Runs `scenario` with a browser; on failure saves `failure.png`, keeps the screenshot
/// dir (its path printed) and fails with the scenario's panic.
async fn in_browser<F, Fut>(scenario: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: std::future::Future<Output = Browser>,
{
    let shots = tempfile::tempdir().expect("screenshot dir");
    let Some(browser) = Browser::start(shots.path()).await else {
        return;
    };
    let client = browser.client.clone();
    match AssertUnwindSafe(scenario(browser)).catch_unwind().await {
        Ok(browser) => {
            eprintln!("admin page screenshots: {}", shots.path().display());
            browser.quit().await;
        }
        Err(panic) => {
            let kept = shots.keep();
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(kept.join("failure.png"), png);
            }
            eprintln!(
                "admin page test failed; screenshots kept in {}",
                kept.display()
            );
            std::panic::resume_unwind(panic);
        }
    }
}

fn event(account: &str, event_id: &str) -> Value {
    json!({"hook_event": "channel_create", "account_id": account, "call_id": "call-admin",
           "call_direction": "inbound", "caller_id_number": "1001", "event_id": event_id})
}

fn hook(name: &str, uri: &str, extra: Value) -> Value {
    let mut doc = json!({"name": name, "uri": uri, "hook": "channel_create"});
    if let (Value::Object(map), Value::Object(more)) = (&mut doc, extra) {
        map.extend(more);
    }
    doc
}

/// Digits only (the page formats counts with separators).
fn number(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

#[tokio::test]
async fn the_page_and_its_files_are_public_locked_down_and_outside_the_envelope() {
    let d = Daemon::start(&[]);
    let http = reqwest::Client::new();
    for (path, content_type) in [
        ("/admin", "text/html; charset=utf-8"),
        ("/admin/app.js", "text/javascript; charset=utf-8"),
        ("/admin/style.css", "text/css; charset=utf-8"),
    ] {
        let r = http.get(format!("{}{path}", d.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path} needs no token");
        let headers = r.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers.get("x-request-id").is_none(),
            "no envelope on {path}"
        );
        let body = r.text().await.unwrap();
        assert!(
            serde_json::from_str::<Value>(&body).is_err(),
            "{path} is not wrapped in JSON"
        );
    }
    let page = http
        .get(format!("{}/admin", d.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<script type=\"module\" src=\"admin/app.js\"></script>"));

    // An unknown file under /admin is the API's 404 envelope; the JSON routes keep theirs.
    let r = d.client().get("/admin/nope.js").await.expect(404);
    assert_eq!(r.body["status"], "error");
    let r = d.client().get("/healthz").await.expect(200);
    assert_eq!(r.body["status"], "success");
    assert_eq!(r.headers["content-type"], "application/json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_keeps_the_token_in_the_tab_only() {
    let d = Daemon::start(&[]);
    let page = format!("{}/admin", d.base);
    in_browser(|b| async move {
        b.goto(&page).await;
        b.type_into("#api-key", "not-a-key").await;
        b.click("#sign-in", "the sign-in button").await;
        b.wait_text("#login-error", "the refusal", |t| {
            t.contains("not accepted")
        })
        .await;

        b.type_into("#api-key", MASTER_KEY).await;
        b.click("#sign-in", "the sign-in button").await;
        b.wait_for(".tree-node", "the account tree").await;
        let stored = b
            .js(
                "return [document.cookie, localStorage.length, sessionStorage.length, \
                 document.getElementById('api-key').value];",
                vec![],
            )
            .await;
        assert_eq!(
            stored,
            json!(["", 0, 0, ""]),
            "no cookie, no web storage, and the key field emptied"
        );

        // A reload forgets the session: the token lived in the page's memory only.
        b.client.refresh().await.unwrap();
        b.wait_for("#login-view:not([hidden]) #api-key", "the sign-in form")
            .await;
        assert!(b.text_of(".tree-node").await.is_none());
        let shown = b
            .js(
                "return ['status', 'session', 'login-view'].map(id => \
                 document.getElementById(id).getClientRects().length > 0);",
                vec![],
            )
            .await;
        assert_eq!(
            shown,
            json!([false, false, true]),
            "signed out: no status bar or session controls, the sign-in form"
        );

        b.type_into("#api-key", MASTER_KEY).await;
        b.click("#sign-in", "the sign-in button").await;
        b.wait_for(".tree-node", "the account tree").await;
        b.click("#sign-out", "the sign-out button").await;
        b.wait_text("#login-error", "the signed-out notice", |t| {
            t.contains("Signed out")
        })
        .await;
        assert!(b.text_of("#app-view .tree-node").await.is_none());
        b
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_failing_hook_re_enables_it_and_recovers_its_events() {
    let d = Daemon::start(FLAGS);
    let receiver = TestReceiver::start().await;
    receiver.script(&[], 500);
    let healthy = TestReceiver::start().await;
    let page = format!("{}/admin", d.base);
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    in_browser(|b| async move {
        b.goto(&page).await;
        b.wait_for("#api-key", "the sign-in form").await;
        b.screenshot("login").await;
        b.type_into("#api-key", MASTER_KEY).await;
        b.click("#sign-in", "the sign-in button").await;

        // Accounts and hooks made through the API while the page is open.
        let api = d.master().await;
        let root = api.own_account().await;
        b.wait_for(&format!("li[data-account-id='{root}']"), "the signed-in account")
            .await;
        let acme = api.create_account(&root, "Acme Telecom").await;
        let acme_eu = api.create_account(&acme, "Acme EU").await;
        let globex = api.create_account(&root, "Globex").await;
        for name in ["Billing events", "Call analytics"] {
            api.create_webhook(&globex, hook(name, &healthy.url, json!({})))
                .await;
        }
        api.create_webhook(&acme_eu, hook("EU archive", &healthy.url, json!({})))
            .await;
        let crm = api
            .create_webhook(
                &acme,
                hook("CRM sync", &format!("{}/crm", receiver.url), json!({"retries": 1})),
            )
            .await;

        // An event the receiver refuses: two failed tries, and the hook auto-disables.
        api.send(
            "POST",
            "/v2/events",
            Some(json!({"data": event(&acme, "admin-e2e-1")})),
        )
        .await
        .expect(202);
        let disabled = eventually(Duration::from_secs(30), || async {
            let r = api
                .get(&format!("/v2/accounts/{acme}/webhooks/{crm}"))
                .await;
            (r.data()["enabled"] == false).then_some(())
        })
        .await;
        assert!(disabled.is_some(), "the failing hook auto-disabled");
        d.wait_until_nothing_is_owed().await;
        let failed_tries = receiver.received().len();
        assert_eq!(failed_tries, 2);

        // The tree: Acme with one webhook, disabled; Globex with two, none disabled.
        b.click("#accounts-refresh", "the tree's refresh button").await;
        let acme_counts = format!("li[data-account-id='{acme}'] > .tree-row .counts");
        b.wait_text(
            &format!("{acme_counts}[data-disabled='1']"),
            "Acme's counts",
            |t| t.contains("1 webhook") && t.contains("1 disabled"),
        )
        .await;
        b.wait_text(
            &format!("li[data-account-id='{globex}'] > .tree-row .counts[data-webhooks='2']"),
            "Globex's counts",
            |t| !t.contains("disabled"),
        )
        .await;
        b.click(
            &format!("li[data-account-id='{acme}'] > .tree-row .toggle"),
            "Acme's sub-accounts toggle",
        )
        .await;
        b.wait_text(
            &format!("li[data-account-id='{acme_eu}'] .counts[data-webhooks='1']"),
            "Acme EU under Acme",
            |t| t.contains("1 webhook"),
        )
        .await;
        b.screenshot("accounts").await;

        // Acme's webhooks: CRM sync auto-disabled.
        b.click(
            &format!("li[data-account-id='{acme}'] > .tree-row .account-link"),
            "Acme's link",
        )
        .await;
        b.wait_text("#account-title", "Acme's title", |t| t == "Acme Telecom")
            .await;
        let row = format!("tr[data-webhook-id='{crm}']");
        b.wait_text(
            &format!("{row} [data-state='auto-disabled']"),
            "CRM sync auto-disabled",
            |_| true,
        )
        .await;
        b.wait_text(&row, "the disable reason", |t| {
            t.contains("too many failed attempts")
        })
        .await;
        b.screenshot("account").await;

        // CRM sync's attempts: the two failures.
        b.click(&format!("{row} a.hook-link"), "CRM sync's link").await;
        b.wait_text("#webhook-title", "CRM sync's title", |t| t == "CRM sync")
            .await;
        let failure_row = "#attempts tr[data-result='failure']";
        b.wait_text(failure_row, "a failed attempt", |t| {
            t.contains("HTTP 500") && t.contains("admin-e2e-1")
        })
        .await;
        let rows = b
            .js("return document.querySelectorAll('#attempts tbody tr').length;", vec![])
            .await;
        assert_eq!(rows, json!(failed_tries), "one row per attempt");
        b.screenshot("webhook").await;

        // Re-enabled in bulk from the account's page.
        b.click("#crumb-account", "the breadcrumb to Acme").await;
        b.click("#reenable-all", "Re-enable auto-disabled").await;
        b.wait_for(&format!("{row} [data-state='enabled']"), "CRM sync enabled again")
            .await;
        let r = api
            .get(&format!("/v2/accounts/{acme}/webhooks/{crm}"))
            .await
            .expect(200);
        assert_eq!(r.data()["enabled"], true);
        assert!(r.data().get("disable_reason").is_none());

        // The status bar: the log's last sequence, and the metrics or their absence.
        let last_seq = d.health().await["last_seq"].as_u64().unwrap();
        b.wait_text("#status-seq", "the log sequence", |t| number(t) >= last_seq)
            .await;
        let metrics = reqwest::get(format!("{}/metrics", d.base)).await.unwrap();
        if metrics.status() == 404 {
            b.wait_text("#status-note", "the missing metrics", |t| {
                t.contains("metrics unavailable")
            })
            .await;
        } else {
            assert_eq!(metrics.status(), 200);
            b.wait_for("#status[data-metrics='available']", "metrics read")
                .await;
            b.wait_text("#status-events", "an events rate", |t| {
                t.parse::<f64>().is_ok()
            })
            .await;
        }

        // From here on: the routes other work adds (see the module doc).
        receiver.script(&[], 200);
        b.click(&format!("{row} a.hook-link"), "CRM sync's link").await;
        b.wait_for(failure_row, "the failed attempts").await;

        // Needs attempt items with `id`.
        let attempt_id = b
            .js(
                "const r = document.querySelector(arguments[0]); return r ? r.dataset.attemptId : null;",
                vec![json!(failure_row)],
            )
            .await;
        let attempt_id = attempt_id.as_str().unwrap_or_default().to_owned();
        assert!(
            attempt_id.len() == 20 && attempt_id.bytes().all(|c| c.is_ascii_digit()),
            "attempt items carry a 20-digit `id` (needs the resend work): {attempt_id:?}"
        );

        // Needs `PUT …/webhooks/{ID}/recover`.
        b.type_into("#recover-since", &(started_unix - 60).to_string())
            .await;
        b.click("#recover-submit", "Recover").await;
        b.wait_text("#notices", "the recovery notice", |t| {
            t.contains("Recovery started")
        })
        .await;
        let recovered = receiver.wait_for(failed_tries + 1).await;
        let delivery = &recovered[failed_tries];
        assert_eq!(delivery.header("x-event-id"), Some("admin-e2e-1"));
        assert_eq!(delivery.uri, "/crm");
        b.click("#attempts-refresh", "the attempts' refresh button")
            .await;
        b.wait_for("#attempts tr[data-result='success']", "the recovered delivery")
            .await;
        b.screenshot("webhook-recovered").await;

        // Needs `PUT …/attempts/{ATTEMPT_ID}/resend`.
        b.click(
            &format!("#attempts tr[data-attempt-id='{attempt_id}'] button[data-action='resend']"),
            "the failed attempt's resend button",
        )
        .await;
        b.wait_text("#notices", "the resend notice", |t| t.contains("sent again"))
            .await;
        let resent = receiver.wait_for(failed_tries + 2).await;
        assert_eq!(
            resent[failed_tries + 1].header("x-event-id"),
            Some("admin-e2e-1")
        );
        b
    })
    .await;
}
