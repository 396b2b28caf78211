//! The few REST calls the load test makes: log in, create accounts and webhooks, post
//! event batches, read `/healthz`, delete accounts.

use std::time::Duration;

use serde_json::{json, Value};

use super::ingest::LogMark;
use super::LoadtestError;

/// Time allowed for one setup call.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// An authenticated client of the daemon's API.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// What became of one `POST /v2/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostOutcome {
    /// 202: the batch is durably in the log.
    Accepted,
    /// Any other HTTP status.
    Refused(u16),
    /// No answer within the timeout (the batch may or may not be in the log).
    Timeout,
    /// Connection refused, reset, ...
    Transport,
}

impl Api {
    /// `PUT /v2/api_auth` with `api_key`; returns the client and the key's account id.
    pub(crate) async fn login(
        http: reqwest::Client,
        base: &str,
        api_key: &str,
    ) -> Result<(Api, String), LoadtestError> {
        let base = base.trim_end_matches('/').to_owned();
        let body = json!({"data": {"api_key": api_key}});
        let reply = send(
            http.request(reqwest::Method::PUT, format!("{base}/v2/api_auth")),
            Some(body),
            "logging in with the master API key",
            201,
        )
        .await?;
        let token = string_at(&reply, "/auth_token", "logging in")?;
        let account = string_at(&reply, "/data/account_id", "logging in")?;
        Ok((Api { http, base, token }, account))
    }

    /// The same login on a client of its own that keeps one keep-alive connection: a
    /// sender of `--connections` posts one request at a time on it.
    pub(crate) fn with_own_connection(&self) -> Result<Api, LoadtestError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()
            .map_err(|source| LoadtestError::Http {
                what: "building a connection's client".into(),
                source,
            })?;
        Ok(Api {
            http,
            base: self.base.clone(),
            token: self.token.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-Auth-Token", &self.token)
    }

    /// `PUT /v2/accounts/{parent}`: a child account; returns its id.
    pub(crate) async fn create_account(
        &self,
        parent: &str,
        name: &str,
    ) -> Result<String, LoadtestError> {
        let what = format!("creating account {name:?}");
        let reply = send(
            self.request(reqwest::Method::PUT, &format!("/v2/accounts/{parent}")),
            Some(json!({"data": {"name": name}})),
            &what,
            201,
        )
        .await?;
        string_at(&reply, "/data/id", &what)
    }

    /// `PUT /v2/accounts/{account}/webhooks`; returns the webhook's id.
    pub(crate) async fn create_webhook(
        &self,
        account: &str,
        doc: Value,
    ) -> Result<String, LoadtestError> {
        let what = format!("creating a webhook in account {account}");
        let reply = send(
            self.request(
                reqwest::Method::PUT,
                &format!("/v2/accounts/{account}/webhooks"),
            ),
            Some(json!({ "data": doc })),
            &what,
            201,
        )
        .await?;
        string_at(&reply, "/data/id", &what)
    }

    /// `DELETE /v2/accounts/{account}` (its webhooks go with it).
    pub(crate) async fn delete_account(&self, account: &str) -> Result<(), LoadtestError> {
        let what = format!("deleting account {account}");
        send(
            self.request(reqwest::Method::DELETE, &format!("/v2/accounts/{account}")),
            None,
            &what,
            200,
        )
        .await
        .map(|_| ())
    }

    /// `GET /healthz`: the log's last sequence, the pending deliveries and the events
    /// accepted.
    pub(crate) async fn health(&self) -> Result<LogMark, LoadtestError> {
        let what = "reading /healthz";
        let reply = send(
            self.http.get(format!("{}/healthz", self.base)),
            None,
            what,
            200,
        )
        .await?;
        let number = |pointer: &str| {
            reply
                .pointer(pointer)
                .and_then(Value::as_u64)
                .ok_or_else(|| LoadtestError::Api {
                    what: what.to_owned(),
                    status: 200,
                    body: format!("no {pointer} in the answer: {reply}"),
                })
        };
        Ok(LogMark {
            last_seq: number("/data/last_seq")?,
            pending: number("/data/pending_deliveries")?,
            events_accepted: number("/data/events_accepted")?,
        })
    }

    /// `POST /v2/events` with a ready `{"data": [...]}` body.
    pub(crate) async fn post_events(&self, body: String, timeout: Duration) -> PostOutcome {
        let sent = self
            .request(reqwest::Method::POST, "/v2/events")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read the answer whole so the connection goes back to the pool.
                match response.bytes().await {
                    Ok(_) if status == 202 => PostOutcome::Accepted,
                    Ok(_) => PostOutcome::Refused(status),
                    Err(e) if e.is_timeout() => PostOutcome::Timeout,
                    Err(_) if status == 202 => PostOutcome::Accepted,
                    Err(_) => PostOutcome::Refused(status),
                }
            }
            Err(e) if e.is_timeout() => PostOutcome::Timeout,
            Err(e) => {
                tracing::debug!(error = %e, "POST /v2/events failed");
                PostOutcome::Transport
            }
        }
    }
}

/// Sends a setup request and checks its status; returns the parsed envelope.
async fn send(
    request: reqwest::RequestBuilder,
    body: Option<Value>,
    what: &str,
    expected: u16,
) -> Result<Value, LoadtestError> {
    let mut request = request.timeout(SETUP_TIMEOUT);
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let http_error = |source| LoadtestError::Http {
        what: what.to_owned(),
        source,
    };
    let response = request.send().await.map_err(http_error)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(http_error)?;
    if status != expected {
        return Err(LoadtestError::Api {
            what: what.to_owned(),
            status,
            body: text.chars().take(2000).collect(),
        });
    }
    serde_json::from_str(&text).map_err(|e| LoadtestError::Api {
        what: what.to_owned(),
        status,
        body: format!(
            "answer is not JSON ({e}): {}",
            text.chars().take(500).collect::<String>()
        ),
    })
}

fn string_at(reply: &Value, pointer: &str, what: &str) -> Result<String, LoadtestError> {
    reply
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| LoadtestError::Api {
            what: what.to_owned(),
            status: 0,
            body: format!("no {pointer} in the answer: {reply}"),
        })
}
