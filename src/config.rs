//! The daemon's configuration: one [`ServeConfig`], parsed by clap from flags and
//! environment variables (INTERFACE.md section 1) and validated once.
//!
//! Translation runs one way: this module builds every subsystem's settings
//! ([`ServeConfig::delivery_settings`], [`ServeConfig::housekeeping_settings`],
//! [`ServeConfig::amqp_settings`]); those subsystems take their settings and never read
//! a `ServeConfig`. The API is the one exception left: its `AppState` holds the
//! `ServeConfig` and its handlers read the few fields they need.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Options of `piston-webhooks serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Where the RocksDB event log lives.
    #[arg(long, env = "PISTON_DATA_DIR", default_value = "./piston-data")]
    pub data_dir: PathBuf,

    /// REST API address (`:0` picks a free port).
    #[arg(long, env = "PISTON_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// API key of the master account; generated and stored in DATA_DIR/master-api-key
    /// when not given.
    #[arg(long, env = "PISTON_MASTER_API_KEY", hide_env_values = true)]
    pub master_api_key: Option<String>,

    /// Allow webhook URIs on loopback, private and link-local addresses.
    #[arg(long, env = "PISTON_ALLOW_PRIVATE_TARGETS", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_targets: bool,

    /// First retry delay in milliseconds; later ones grow exponentially with jitter.
    #[arg(long, env = "PISTON_RETRY_BASE_MS", default_value_t = 2000)]
    pub retry_base_ms: u64,

    /// Whole-request timeout for one delivery try, in milliseconds.
    #[arg(long, env = "PISTON_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Failed tries within the window that auto-disable a hook.
    #[arg(long, env = "PISTON_FAILURE_THRESHOLD", default_value_t = 6)]
    pub failure_threshold: u32,

    /// The auto-disable window in milliseconds.
    #[arg(long, env = "PISTON_FAILURE_WINDOW_MS", default_value_t = 60_000)]
    pub failure_window_ms: u64,

    /// How many days call events and attempts stay in the log.
    #[arg(long, env = "PISTON_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,

    /// Also consume Kazoo-format call events from this RabbitMQ URL.
    #[arg(long, env = "PISTON_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,

    /// The durable queue the daemon consumes Kazoo's call events from.
    #[arg(long, env = "PISTON_AMQP_QUEUE", default_value = "piston_webhooks")]
    pub amqp_queue: String,

    /// The durable queue malformed messages are dead-lettered to.
    #[arg(
        long,
        env = "PISTON_AMQP_DEAD_LETTER",
        default_value = "piston_webhooks.dead"
    )]
    pub amqp_dead_letter: String,

    /// Unacknowledged messages the broker may send ahead (basic.qos); a batch appended
    /// at once is at most a quarter of it.
    #[arg(long, env = "PISTON_AMQP_PREFETCH", default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..))]
    pub amqp_prefetch: u16,

    /// Largest request body accepted, in bytes (larger gets 413).
    #[arg(long, env = "PISTON_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// How long a request body may take to arrive, in milliseconds (then 408).
    #[arg(long, env = "PISTON_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_timeout_ms: u64,

    /// Delivery tries to one webhook that may run at once.
    #[arg(long, env = "PISTON_MAX_IN_FLIGHT_PER_HOOK", default_value_t = 8)]
    pub max_in_flight_per_hook: usize,

    /// Delivery tries that may run at once across all webhooks.
    #[arg(long, env = "PISTON_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,

    /// How much of a receiver's response body an attempt keeps, in bytes.
    #[arg(long, env = "PISTON_MAX_RESPONSE_BODY_BYTES", default_value_t = 1024)]
    pub max_response_body_bytes: usize,

    /// Retention in seconds instead of days (for tests and demos; overrides
    /// --retention-days when given).
    #[arg(long, env = "PISTON_RETENTION_SECONDS")]
    pub retention_seconds: Option<u64>,

    /// Take a registry snapshot after this many new log records.
    #[arg(long, env = "PISTON_SNAPSHOT_EVERY", default_value_t = 100_000)]
    pub snapshot_every: u64,

    /// How often snapshots and retention are considered, in milliseconds.
    #[arg(
        long,
        env = "PISTON_HOUSEKEEPING_INTERVAL_MS",
        default_value_t = 60_000
    )]
    pub housekeeping_interval_ms: u64,

    /// How long a shutdown waits for open requests and tries in flight, in milliseconds.
    #[arg(long, env = "PISTON_SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    pub shutdown_timeout_ms: u64,

    /// Lifetime of auth tokens in seconds.
    #[arg(long, env = "PISTON_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub token_ttl_secs: u64,

    /// Levels of accounts below the master account (INTERFACE.md section 8).
    #[arg(long, env = "PISTON_MAX_ACCOUNT_DEPTH", default_value_t = 16)]
    pub max_account_depth: usize,

    /// Direct children one account may have.
    #[arg(long, env = "PISTON_MAX_CHILDREN", default_value_t = 10_000)]
    pub max_children: usize,

    /// Webhooks one account may own.
    #[arg(long, env = "PISTON_MAX_WEBHOOKS_PER_ACCOUNT", default_value_t = 1000)]
    pub max_webhooks_per_account: usize,

    /// Largest stored JSON of one account or webhook document, in bytes (larger gets 413).
    #[arg(long, env = "PISTON_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024)]
    pub max_document_bytes: usize,

    /// Largest delivery request body (or GET query string) after encoding, in bytes; a
    /// larger delivery is not sent and its attempt is a final failure naming the limit.
    #[arg(long, env = "PISTON_MAX_DELIVERY_BYTES", default_value_t = 1024 * 1024)]
    pub max_delivery_bytes: usize,

    /// Open API connections at most; more wait in the listen backlog. The daemon raises
    /// its soft open-files limit to the hard one at start.
    #[arg(long, env = "PISTON_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Unexpired auth tokens one account may hold; issuing one more revokes its oldest.
    #[arg(long, env = "PISTON_MAX_TOKENS_PER_ACCOUNT", default_value_t = 1000)]
    pub max_tokens_per_account: usize,

    /// For how many seconds after a webhook's secret is rotated its deliveries carry the
    /// old secret's signature too (after the new one's).
    #[arg(
        long,
        env = "PISTON_SECRET_ROTATION_OVERLAP_SECS",
        default_value_t = 86_400
    )]
    pub secret_rotation_overlap_secs: u64,

    /// POST a signed JSON alert to this URL for each auto-disabled webhook (private and
    /// loopback addresses allowed). Off by default.
    #[arg(long, env = "PISTON_ALERT_URL")]
    pub alert_url: Option<String>,

    /// The secret alerts are signed with (`whsec_` + base64 of 24 to 64 bytes); generated
    /// and stored in DATA_DIR/alert-secret when not given and --alert-url is.
    #[arg(long, env = "PISTON_ALERT_SECRET", hide_env_values = true)]
    pub alert_secret: Option<String>,
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    #[error("--master-api-key must be 1 to 256 printable ASCII characters without spaces")]
    BadMasterKey,
    #[error("--amqp-url is not an AMQP URI (amqp://user:pass@host:port/vhost)")]
    BadAmqpUrl,
    #[error("--amqp-queue and --amqp-dead-letter must be two different names of 1 to 255 bytes")]
    BadAmqpQueue,
    #[error("--alert-url must be an http:// or https:// URL")]
    BadAlertUrl,
    #[error("--alert-secret must be whsec_ followed by the base64 of 24 to 64 bytes")]
    BadAlertSecret,
}

impl ServeConfig {
    /// Checks the values that clap's types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.request_timeout_ms == 0 {
            return Err(ConfigError::Zero("--request-timeout-ms"));
        }
        if self.failure_threshold == 0 {
            return Err(ConfigError::Zero("--failure-threshold"));
        }
        if self.failure_window_ms == 0 {
            return Err(ConfigError::Zero("--failure-window-ms"));
        }
        if self.retention_days == 0 {
            return Err(ConfigError::Zero("--retention-days"));
        }
        if self.max_in_flight_per_hook == 0 {
            return Err(ConfigError::Zero("--max-in-flight-per-hook"));
        }
        if self.token_ttl_secs == 0 {
            return Err(ConfigError::Zero("--token-ttl-secs"));
        }
        for (value, flag) in [
            (self.max_account_depth, "--max-account-depth"),
            (self.max_children, "--max-children"),
            (self.max_webhooks_per_account, "--max-webhooks-per-account"),
            (self.max_document_bytes, "--max-document-bytes"),
            (self.max_delivery_bytes, "--max-delivery-bytes"),
            (self.max_connections, "--max-connections"),
            (self.max_tokens_per_account, "--max-tokens-per-account"),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(flag));
            }
        }
        if let Some(key) = &self.master_api_key {
            let printable = key.bytes().all(|b| b.is_ascii_graphic());
            if key.is_empty() || key.len() > 256 || !printable {
                return Err(ConfigError::BadMasterKey);
            }
        }
        if let Some(url) = &self.amqp_url {
            // The error would show the URL, password included: keep it out.
            url.parse::<lapin::uri::AMQPUri>()
                .map_err(|_| ConfigError::BadAmqpUrl)?;
            let fits = |name: &str| !name.is_empty() && name.len() <= 255;
            if !fits(&self.amqp_queue)
                || !fits(&self.amqp_dead_letter)
                || self.amqp_queue == self.amqp_dead_letter
            {
                return Err(ConfigError::BadAmqpQueue);
            }
        }
        if self.alert_url.is_some() && self.alert_url().is_none() {
            return Err(ConfigError::BadAlertUrl);
        }
        if let Some(secret) = &self.alert_secret {
            actors::signing::decode_secret(secret).map_err(|_| ConfigError::BadAlertSecret)?;
        }
        Ok(())
    }

    /// `--alert-url`, when given and an http(s) URL.
    pub fn alert_url(&self) -> Option<url::Url> {
        let url = url::Url::parse(self.alert_url.as_deref()?).ok()?;
        matches!(url.scheme(), "http" | "https").then_some(url)
    }

    /// The retry base as a duration.
    pub fn retry_base(&self) -> Duration {
        Duration::from_millis(self.retry_base_ms)
    }

    /// The request timeout as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// When snapshots and retention run.
    pub fn housekeeping_settings(&self) -> crate::housekeeping::HousekeepingSettings {
        let retention = match self.retention_seconds {
            Some(secs) => Duration::from_secs(secs),
            None => Duration::from_secs(u64::from(self.retention_days) * 86_400),
        };
        crate::housekeeping::HousekeepingSettings {
            interval: Duration::from_millis(self.housekeeping_interval_ms.max(1)),
            snapshot_every_records: self.snapshot_every.max(1),
            retention,
        }
    }

    /// The request body timeout as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms.max(1))
    }

    /// The shutdown bound as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// The delivery settings the webhook actors use.
    pub fn delivery_settings(&self) -> actors::DeliverySettings {
        actors::DeliverySettings {
            retry_base: self.retry_base(),
            request_timeout: self.request_timeout(),
            failure_threshold: self.failure_threshold,
            failure_window: Duration::from_millis(self.failure_window_ms),
            max_in_flight_per_hook: self.max_in_flight_per_hook,
            max_in_flight_total: self.max_in_flight,
            max_response_body: self.max_response_body_bytes,
            max_delivery_bytes: self.max_delivery_bytes,
            allow_private_targets: self.allow_private_targets,
            secret_rotation_overlap: Duration::from_secs(self.secret_rotation_overlap_secs),
            idle_stop: actors::webhook::IDLE_STOP,
        }
    }

    /// The RabbitMQ consumer's settings when `--amqp-url` is given; `None` otherwise.
    pub fn amqp_settings(&self) -> Option<crate::amqp::AmqpSettings> {
        self.amqp_url.as_ref().map(|url| crate::amqp::AmqpSettings {
            url: url.clone(),
            queue: self.amqp_queue.clone(),
            dead_letter: self.amqp_dead_letter.clone(),
            prefetch: self.amqp_prefetch,
            batch_wait: crate::amqp::BATCH_WAIT,
            max_message_bytes: self.max_body_bytes,
        })
    }
}
