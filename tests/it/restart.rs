//! Every change survives a restart on the same data dir.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn accounts_webhooks_keys_and_tokens_survive_a_restart() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let child = master.create_account(&root, "kept").await;
    let hook = master.create_webhook(&child, hook_doc("kept hook")).await;
    let deleted = master.create_webhook(&child, hook_doc("gone")).await;
    master
        .patch(
            &format!("/v2/accounts/{child}/webhooks/{hook}"),
            json!({"retries": 4, "enabled": false}),
        )
        .await
        .expect(200);
    master
        .delete(&format!("/v2/accounts/{child}/webhooks/{deleted}"))
        .await
        .expect(200);
    let child_key = master
        .get(&format!("/v2/accounts/{child}/api_key"))
        .await
        .expect(200);
    let child_key = child_key.data()["api_key"].as_str().unwrap().to_owned();
    let token = master.token.clone();

    let d = d.restart(&[]);
    let mut master = d.client();
    master.token = token; // the token issued before the restart still works
    let r = master
        .get(&format!("/v2/accounts/{child}/webhooks/{hook}"))
        .await
        .expect(200);
    assert_eq!(r.data()["retries"], 4);
    assert_eq!(r.data()["enabled"], false);
    assert_eq!(r.data()["name"], "kept hook");
    master
        .get(&format!("/v2/accounts/{child}/webhooks/{deleted}"))
        .await
        .expect(404);
    let r = master
        .get(&format!("/v2/accounts/{root}/children"))
        .await
        .expect(200);
    assert_eq!(r.data(), &json!([{"id": child, "name": "kept"}]));
    d.client().login(&child_key).await;
}

#[tokio::test]
async fn a_generated_master_key_is_stored_and_a_given_one_replaces_it() {
    let temp = tempfile::tempdir().unwrap();
    // First start without a key: one is generated and stored with mode 0600.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_piston-webhooks"));
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(temp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let key_file = temp.path().join("master-api-key");
    let stored = eventually(std::time::Duration::from_secs(60), || async {
        std::fs::read_to_string(&key_file)
            .ok()
            .filter(|k| !k.trim().is_empty())
    })
    .await
    .expect("master-api-key written");
    let _ = child.kill();
    let _ = child.wait();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stored = stored.trim().to_owned();
    assert_eq!(stored.len(), 64);

    // Started with --master-api-key, the configured key wins and the old one stops working.
    let d = Daemon::start_in(temp.path(), &[]);
    d.master().await;
    let r = d
        .client()
        .put("/v2/api_auth", json!({"api_key": stored}))
        .await;
    assert_eq!(r.status, 401);
}
