//! The broker objects Piston declares, shared by the consumer ([`super::AmqpConsumer`])
//! and the load tool (`piston-loadtest`, which declares its run's queues before the
//! daemon it starts consumes from them), so both always declare them alike:
//!
//! - Kazoo's topic exchange `callevt` ([`ensure_call_event_exchange`]): used as found,
//!   declared as Kazoo declares it when absent;
//! - a durable queue and its durable dead-letter queue ([`declare_queues`]);
//! - the queue's bindings to `callevt`, one per event we deliver
//!   ([`declare_consumer_topology`], with [`mapping::routing_keys`]).
//!
//! It also names a broker without its credentials ([`broker_label`]). It must not
//! consume, publish or acknowledge: that is the consumer's and the load tool's business.
//! `docs/amqp.md` describes the topology for operators.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use super::mapping::{self, CALL_EVENT_EXCHANGE};

/// `host:port (vhost V)` of a broker URI, without the credentials.
pub fn broker_label(url: &str) -> String {
    url.parse::<lapin::uri::AMQPUri>().map_or_else(
        |_| "(unparsable URI)".to_owned(),
        |u| {
            format!(
                "{}:{} (vhost {})",
                u.authority.host, u.authority.port, u.vhost
            )
        },
    )
}

/// Declares what the consumer consumes from: `callevt` ([`ensure_call_event_exchange`]),
/// its two queues ([`declare_queues`]) and the bindings of `queue`.
pub async fn declare_consumer_topology(
    connection: &Connection,
    queue: &str,
    dead_letter: &str,
) -> Result<(), lapin::Error> {
    ensure_call_event_exchange(connection).await?;
    let channel = connection.create_channel().await?;
    declare_queues(&channel, queue, dead_letter).await?;
    for key in mapping::routing_keys() {
        channel
            .queue_bind(
                queue.into(),
                CALL_EVENT_EXCHANGE.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let _ = channel.close(200, "ok".into()).await;
    Ok(())
}

/// Makes sure Kazoo's exchange `callevt` exists. It is used as found; when absent it is
/// declared exactly as Kazoo's `kz_amqp_util:new_exchange/2` does (topic, not durable),
/// so Kazoo's own declaration of it never conflicts with ours.
pub async fn ensure_call_event_exchange(connection: &Connection) -> Result<(), lapin::Error> {
    let probe = connection.create_channel().await?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    match probe
        .exchange_declare(
            CALL_EVENT_EXCHANGE.into(),
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await
    {
        Ok(()) => {
            let _ = probe.close(200, "ok".into()).await;
        }
        Err(error) => {
            // A failed passive declare closes the channel: declare on a new one.
            tracing::info!(%error, "exchange callevt not found; declaring it as Kazoo does");
            let channel = connection.create_channel().await?;
            channel
                .exchange_declare(
                    CALL_EVENT_EXCHANGE.into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let _ = channel.close(200, "ok".into()).await;
        }
    }
    Ok(())
}

/// Declares the durable dead-letter queue and the durable queue that dead-letters to it
/// (`x-dead-letter-exchange = ""`, `x-dead-letter-routing-key = dead_letter`). The load
/// tool declares its run's queues with this too, so both declarations always agree.
pub async fn declare_queues(
    channel: &Channel,
    queue: &str,
    dead_letter: &str,
) -> Result<(), lapin::Error> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(dead_letter.into(), durable, FieldTable::default())
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead_letter.into()),
    );
    channel
        .queue_declare(queue.into(), durable, arguments)
        .await?;
    Ok(())
}
