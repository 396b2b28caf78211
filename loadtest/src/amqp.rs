//! `--via amqp`: the load published to RabbitMQ as Kazoo's ecallmgr publishes call
//! events, for the daemon's AMQP consumer to ingest instead of `POST /v2/events`.
//!
//! Event `n` becomes a Kazoo `CHANNEL_CREATE` (hyphenated keys, the account id in
//! `Custom-Channel-Vars`, `Msg-ID` and `Call-ID` = the load tool's event id `lt-TAG-n`)
//! published to the topic exchange `callevt` with the routing key
//! `call.CHANNEL_CREATE.CALL_ID`, mandatory, on channels in confirm mode: an event is
//! accepted once the broker confirmed it was routed to a queue. Like Kazoo's
//! `kz_amqp_util:basic_publish/5` (no `delivery_mode` unless asked), messages are
//! transient by default; `--amqp-persistent` sends them persistent, and the broker then
//! confirms only once it wrote them to disk (the queue is durable). The daemon delivers
//! an event with the id [`mapping::event_id_for`] derives from its `Msg-ID`,
//! `Event-Name` and `Call-ID`; [`expected_event_id`] calls the same function, so the
//! receiver knows which event a delivery is.
//!
//! The daemon started for the run consumes from a queue of its own
//! (`piston-loadtest-TAG-PID`, dead letters to `piston-loadtest-TAG-PID.dead`), declared
//! here before it starts ([`Publisher::declare_queues`], with the daemon's own
//! [`topology`] functions, so both declare them alike) and deleted at the end
//! ([`Publisher::delete_queues`]).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::{Map, Value};

use super::receiver::derived_key;
use super::setup::Plan;
use super::LoadtestError;
use piston_webhooks::amqp::mapping::{self, CALL_EVENT_EXCHANGE};
use piston_webhooks::amqp::topology;
pub(crate) use piston_webhooks::amqp::topology::broker_label;
use piston_webhooks::clock;

/// The broker of `--amqp-url` unless told otherwise.
pub(crate) const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The Kazoo event every generated message is.
pub(crate) const EVENT_NAME: &str = "CHANNEL_CREATE";

/// How long connecting to the broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the daemon may take to start consuming from its queue.
const CONSUMER_DEADLINE: Duration = Duration::from_secs(60);

/// Whether `url` is an AMQP URI of a loopback broker (the load tool contacts nothing
/// else).
pub(crate) fn is_loopback_broker(url: &str) -> bool {
    let Ok(uri) = url.parse::<lapin::uri::AMQPUri>() else {
        return false;
    };
    let host = uri
        .authority
        .host
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The queue names of a run: the daemon's queue and its dead-letter queue.
pub(crate) fn queue_names(tag: &str) -> (String, String) {
    let queue = format!("piston-loadtest-{tag}-{}", std::process::id());
    let dead = format!("{queue}.dead");
    (queue, dead)
}

/// The routing key Kazoo publishes a call event with: `call.EVENT_NAME.CALL_ID`, the
/// call id `amqp_util:encode`d (`.` becomes `%2E`, so it is one topic word).
pub(crate) fn routing_key(call_id: &str) -> String {
    format!("call.{EVENT_NAME}.{}", call_id.replace('.', "%2E"))
}

/// Appends event `n` to `out` as the Kazoo message ecallmgr would publish.
pub(crate) fn write_message(out: &mut String, plan: &Plan, event: u64, gregorian_now: u64) {
    let account_id = plan.account_id_of(event);
    let direction = Plan::direction_of(event);
    let id = plan.event_id(event);
    // Ids, account ids and the tag are [A-Za-z0-9_-]: nothing to escape.
    let _ = write!(
        out,
        concat!(
            r#"{{"Event-Category":"call_event","Event-Name":"{name}","#,
            r#""App-Name":"piston-loadtest","App-Version":"{version}","Node":"loadtest@127.0.0.1","#,
            r#""Msg-ID":"{id}","Call-ID":"{id}","Call-Direction":"{direction}","#,
            r#""Caller-ID-Name":"Load Test","Caller-ID-Number":"+1555{n:07}","#,
            r#""Callee-ID-Number":"+1666{n:07}","From":"{n}@loadtest.invalid","#,
            r#""To":"2000@loadtest.invalid","Request":"2000@loadtest.invalid","#,
            r#""Channel-Is-Loopback":false,"Timestamp":{timestamp},"#,
            r#""Custom-Channel-Vars":{{"Account-ID":"{account}","Loadtest":"{tag}"}}}}"#
        ),
        name = EVENT_NAME,
        version = piston_webhooks::VERSION,
        id = id,
        direction = direction,
        n = event % 10_000_000,
        timestamp = gregorian_now,
        account = account_id,
        tag = plan.tag,
    );
}

/// The `X-Event-ID` the daemon delivers event `n` with: what
/// [`mapping::event_id_for`] derives from the message's `Msg-ID`, `Event-Name` and
/// `Call-ID` (the only fields it reads when there is a `Msg-ID`).
pub(crate) fn expected_event_id(plan: &Plan, event: u64) -> String {
    let id = plan.event_id(event);
    let mut msg = Map::new();
    msg.insert("Msg-ID".into(), Value::String(id.clone()));
    msg.insert("Event-Name".into(), Value::String(EVENT_NAME.into()));
    msg.insert("Call-ID".into(), Value::String(id));
    mapping::event_id_for(&msg, b"").as_str().to_owned()
}

/// [`derived_key`] of every event's delivered id → the event's index, for the
/// receiver. Two events whose ids share their first 64 bits (about one chance in 10^10
/// for 50,000 events) fail the run rather than its reconciliation.
pub(crate) fn derived_ids(plan: &Plan, events: u64) -> Result<HashMap<u64, u32>, LoadtestError> {
    let mut ids = HashMap::with_capacity(usize::try_from(events).unwrap_or(0));
    for event in 0..events {
        let index = u32::try_from(event)
            .map_err(|_| LoadtestError::Invalid("--via amqp takes at most 2^32 events".into()))?;
        let id = expected_event_id(plan, event);
        let key = derived_key(&id)
            .ok_or_else(|| LoadtestError::Setup(format!("unexpected derived event id {id}")))?;
        if ids.insert(key, index).is_some() {
            return Err(LoadtestError::Setup(
                "two events' derived ids share their first 64 bits; run again (another tag)".into(),
            ));
        }
    }
    Ok(ids)
}

/// What became of one published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublishOutcome {
    /// The broker confirmed it, routed to a queue.
    Confirmed,
    /// The broker refused it (`basic.nack`).
    Nacked,
    /// Confirmed but returned: no queue is bound for its routing key.
    Unroutable,
    /// No confirm within the timeout (it may or may not be in the queue).
    Timeout,
    /// The channel or connection failed.
    Failed,
}

/// A connection to the broker with `channels` confirm-mode channels, one per sender.
pub(crate) struct Publisher {
    connection: Connection,
    channels: Vec<Channel>,
    properties: BasicProperties,
}

impl Publisher {
    /// Connects, opens the channels in confirm mode and makes sure `callevt` exists
    /// (declared as Kazoo declares it, topic and not durable, when it does not).
    pub(crate) async fn connect(
        url: &str,
        channels: usize,
        persistent: bool,
    ) -> Result<Publisher, LoadtestError> {
        let broker = broker_label(url);
        let amqp_error = |what: &str| {
            let what = format!("{what} ({broker})");
            move |e: lapin::Error| LoadtestError::Amqp(format!("{what}: {e}"))
        };
        let properties = ConnectionProperties::default()
            .with_connection_name("piston-webhooks loadtest publisher".into());
        let connection =
            tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties))
                .await
                .map_err(|_| {
                    LoadtestError::Amqp(format!(
                        "connecting to the broker ({broker}): no answer within {CONNECT_TIMEOUT:?}"
                    ))
                })?
                .map_err(amqp_error("connecting to the broker"))?;
        topology::ensure_call_event_exchange(&connection)
            .await
            .map_err(amqp_error("making sure the exchange callevt exists"))?;
        let mut opened = Vec::with_capacity(channels.max(1));
        for _ in 0..channels.max(1) {
            let channel = connection
                .create_channel()
                .await
                .map_err(amqp_error("opening a channel"))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(amqp_error("turning publisher confirms on"))?;
            opened.push(channel);
        }
        let mut properties =
            BasicProperties::default().with_content_type("application/json".into());
        if persistent {
            properties = properties.with_delivery_mode(2);
        }
        Ok(Publisher {
            connection,
            channels: opened,
            properties,
        })
    }

    /// Declares the run's queue and dead-letter queue exactly as the daemon declares
    /// them (`docs/amqp.md`: durable; the queue with `x-dead-letter-exchange = ""` and
    /// `x-dead-letter-routing-key = DEAD_LETTER`), so that waiting for the daemon's
    /// consumer never asks the broker about a queue that does not exist yet (which
    /// closes the channel and makes lapin log an error). The daemon binds it.
    pub(crate) async fn declare_queues(
        &self,
        queue: &str,
        dead_letter: &str,
    ) -> Result<(), LoadtestError> {
        let amqp_error =
            |what: String| move |e: lapin::Error| LoadtestError::Amqp(format!("{what}: {e}"));
        let channel = self
            .connection
            .create_channel()
            .await
            .map_err(amqp_error("opening a channel".into()))?;
        topology::declare_queues(&channel, queue, dead_letter)
            .await
            .map_err(amqp_error(format!(
                "declaring the queues {queue} and {dead_letter}"
            )))?;
        let _ = channel.close(200, "ok".into()).await;
        Ok(())
    }

    /// `(messages ready, consumers)` of `queue`, or `None` if it does not exist.
    async fn queue_state(&self, queue: &str) -> Option<(u32, u32)> {
        let channel = self.connection.create_channel().await.ok()?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .ok();
        let _ = channel.close(200, "ok".into()).await;
        declared.map(|q| (q.message_count(), q.consumer_count()))
    }

    /// Waits until something consumes from `queue` (the daemon, once it declared and
    /// bound it), so that no published event is unroutable.
    pub(crate) async fn wait_for_consumer(&self, queue: &str) -> Result<(), LoadtestError> {
        let deadline = Instant::now() + CONSUMER_DEADLINE;
        loop {
            if self
                .queue_state(queue)
                .await
                .is_some_and(|(_, consumers)| consumers > 0)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LoadtestError::Daemon(format!(
                    "it did not consume from the AMQP queue {queue} within {CONSUMER_DEADLINE:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Publishes the ready `(routing key, body)` messages on channel `sender` (modulo
    /// the channels), all at once, then waits (at most `timeout`) for their confirms.
    pub(crate) async fn publish(
        &self,
        sender: usize,
        messages: &[(String, Vec<u8>)],
        timeout: Duration,
    ) -> Vec<PublishOutcome> {
        let Some(channel) = self.channels.get(sender % self.channels.len().max(1)) else {
            return vec![PublishOutcome::Failed; messages.len()];
        };
        let work = async {
            // Each publish queues its frames when first polled: joining them pipelines
            // the whole batch in order, and the confirms are awaited together.
            let published = join_all(messages.iter().map(|(key, body)| {
                channel.basic_publish(
                    CALL_EVENT_EXCHANGE.into(),
                    key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    self.properties.clone(),
                )
            }))
            .await;
            let confirms = join_all(published.into_iter().map(|p| async move {
                match p {
                    Ok(confirm) => match confirm.await {
                        Ok(Confirmation::Ack(None)) => PublishOutcome::Confirmed,
                        Ok(Confirmation::Ack(Some(_))) => PublishOutcome::Unroutable,
                        Ok(Confirmation::Nack(_)) => PublishOutcome::Nacked,
                        // Confirm mode is on: the broker always confirms.
                        Ok(Confirmation::NotRequested) => PublishOutcome::Failed,
                        Err(e) => {
                            tracing::debug!(error = %e, "waiting for a publisher confirm failed");
                            PublishOutcome::Failed
                        }
                    },
                    Err(e) => {
                        tracing::debug!(error = %e, "basic.publish failed");
                        PublishOutcome::Failed
                    }
                }
            }))
            .await;
            confirms
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(outcomes) => outcomes,
            Err(_) => vec![PublishOutcome::Timeout; messages.len()],
        }
    }

    /// Deletes the run's queues (once the daemon that would declare them again is gone);
    /// returns the messages each held.
    pub(crate) async fn delete_queues(&self, names: &[&str]) -> Vec<(String, Option<u32>)> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let deleted = match self.connection.create_channel().await {
                Ok(channel) => {
                    let result = channel
                        .queue_delete((*name).into(), QueueDeleteOptions::default())
                        .await;
                    let _ = channel.close(200, "ok".into()).await;
                    match result {
                        Ok(count) => Some(count),
                        Err(e) => {
                            tracing::warn!(queue = name, error = %e, "cannot delete a load-test queue");
                            None
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(queue = name, error = %e, "cannot delete a load-test queue");
                    None
                }
            };
            out.push(((*name).to_owned(), deleted));
        }
        out
    }

    /// Closes the connection (bounded).
    pub(crate) async fn close(&self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.connection
                .close(200, "piston-webhooks loadtest done".into()),
        )
        .await;
    }
}

/// The messages of events `lo..hi`: routing key and body.
pub(crate) fn batch_messages(plan: &Plan, lo: u64, hi: u64) -> Vec<(String, Vec<u8>)> {
    let now = clock::gregorian_secs(clock::now_unix_ms());
    let mut body = String::with_capacity(640);
    (lo..hi)
        .map(|event| {
            body.clear();
            write_message(&mut body, plan, event, now);
            (routing_key(&plan.event_id(event)), body.as_bytes().to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests;
