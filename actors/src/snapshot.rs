//! Registry snapshots: the whole projection, encoded with rmp-serde under a format
//! version, stored in the log's snapshot column family. Start-up loads the newest one
//! and replays only the records after it; a snapshot that is missing, corrupt or of an
//! unknown version means a full replay, never a failed start.
//!
//! The format is the serde layout of [`Registry`] and the types it holds, so it lives
//! beside the registry: a field added there is added here, and needs a serde default
//! (or a new [`SNAPSHOT_VERSION`]) like any on-disk change. This module does no I/O.

use serde::{Deserialize, Serialize};

use crate::registry::Registry;

/// The version of the snapshot encoding written by this build.
pub const SNAPSHOT_VERSION: u16 = 1;

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
    let mut registry = file.registry;
    registry.rebuild_derived();
    Ok(registry)
}

#[cfg(test)]
mod tests;
