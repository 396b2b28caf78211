//! Registry snapshots: the whole projection, encoded with rmp-serde under a format
//! version, stored in the log's snapshot column family. Start-up loads the newest one
//! and replays only the records after it; a snapshot that is missing, corrupt or of an
//! unknown version means a full replay, never a failed start.

use serde::{Deserialize, Serialize};

use actors::Registry;

/// The version of the snapshot encoding written by this build.
const SNAPSHOT_VERSION: u16 = 1;

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u16,
    registry: Registry,
}

#[derive(Serialize)]
struct SnapshotFileRef<'a> {
    version: u16,
    registry: &'a Registry,
}

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot encode the snapshot: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("cannot decode the snapshot: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("snapshot version {0} is not known to this build")]
    UnknownVersion(u16),
}

/// Encodes a registry.
pub fn encode(registry: &Registry) -> Result<Vec<u8>, SnapshotError> {
    Ok(rmp_serde::to_vec_named(&SnapshotFileRef {
        version: SNAPSHOT_VERSION,
        registry,
    })?)
}

/// Decodes a registry written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Registry, SnapshotError> {
    let file: SnapshotFile = rmp_serde::from_slice(bytes)?;
    if file.version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnknownVersion(file.version));
    }
    Ok(file.registry)
}

#[cfg(test)]
mod tests {
    use eventlog::{AccountId, Event, Record, WebhookId};
    use serde_json::json;

    use super::*;

    #[test]
    fn a_registry_round_trips_and_garbage_is_an_error() {
        let mut registry = Registry::new();
        let account = AccountId::generate();
        let records = [
            Event::AccountCreated {
                account_id: account.clone(),
                parent_id: None,
                api_key: "k".into(),
                doc: json!({"name": "m"}),
            },
            Event::WebhookCreated {
                account_id: account.clone(),
                webhook_id: WebhookId::generate(),
                doc: json!({"hook": "all", "name": "h", "uri": "http://example.com"}),
            },
            Event::EventAccepted {
                event_id: eventlog::EventId::generate(),
                account_id: account,
                hook_event: "channel_create".into(),
                payload: json!({"call_id": "c"}),
            },
        ];
        for (i, event) in records.into_iter().enumerate() {
            registry.apply(&Record {
                seq: i as u64 + 1,
                time_ms: 1000,
                event,
            });
        }
        assert_eq!(registry.pending_count(), 1);
        let bytes = encode(&registry).unwrap();
        assert_eq!(decode(&bytes).unwrap(), registry);
        assert!(decode(b"not a snapshot").is_err());
        let mut other_version = rmp_serde::to_vec_named(&SnapshotFileRef {
            version: 99,
            registry: &registry,
        })
        .unwrap();
        assert!(matches!(
            decode(&other_version),
            Err(SnapshotError::UnknownVersion(99))
        ));
        other_version.truncate(10);
        assert!(decode(&other_version).is_err());
    }
}
