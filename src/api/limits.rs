//! The tenant limits of INTERFACE.md section 8 as the API enforces them: account depth,
//! children per account, webhooks per account and the size of a stored document.
//!
//! They are checked by the handlers before they commit, never by `Registry::apply`:
//! replay must rebuild what was accepted whatever the flags are today, so lowering a
//! limit refuses new changes and never drops stored ones. Creates that count against a
//! limit (a child account, a webhook) hold [`Limits::creating`] from the check to the
//! commit, so concurrent creates cannot overshoot.

use serde_json::{Map, Value};
use tokio::sync::{Mutex, MutexGuard};

use actors::Registry;
use eventlog::AccountId;

use super::error::ApiError;
use crate::config::ServeConfig;

/// The limits in force, and the lock that makes counted creates exact.
pub(crate) struct Limits {
    max_account_depth: usize,
    max_children: usize,
    max_webhooks_per_account: usize,
    max_document_bytes: usize,
    creating: Mutex<()>,
}

impl Limits {
    pub(crate) fn new(config: &ServeConfig) -> Limits {
        Limits {
            max_account_depth: config.max_account_depth,
            max_children: config.max_children,
            max_webhooks_per_account: config.max_webhooks_per_account,
            max_document_bytes: config.max_document_bytes,
            creating: Mutex::new(()),
        }
    }

    /// Held from a counted check to its commit.
    pub(crate) async fn creating(&self) -> MutexGuard<'_, ()> {
        self.creating.lock().await
    }

    /// May `parent` have one more child?
    pub(crate) fn check_new_child(
        &self,
        registry: &Registry,
        parent: &AccountId,
    ) -> Result<(), ApiError> {
        let Some(account) = registry.account(parent) else {
            return Err(ApiError::BadIdentifier(parent.to_string()));
        };
        if registry.account_depth(parent) + 1 > self.max_account_depth {
            return Err(ApiError::LimitReached {
                what: "the depth of accounts below the master account",
                flag: "--max-account-depth",
                limit: self.max_account_depth,
            });
        }
        if account.children.len() >= self.max_children {
            return Err(ApiError::LimitReached {
                what: "the number of child accounts of one account",
                flag: "--max-children",
                limit: self.max_children,
            });
        }
        Ok(())
    }

    /// May `account` own one more webhook?
    pub(crate) fn check_new_webhook(
        &self,
        registry: &Registry,
        account: &AccountId,
    ) -> Result<(), ApiError> {
        if registry.webhook_count(account) >= self.max_webhooks_per_account {
            return Err(ApiError::LimitReached {
                what: "the number of webhooks of one account",
                flag: "--max-webhooks-per-account",
                limit: self.max_webhooks_per_account,
            });
        }
        Ok(())
    }

    /// Is a document to store within `--max-document-bytes` (as compact JSON)?
    pub(crate) fn check_document(&self, doc: &Map<String, Value>) -> Result<(), ApiError> {
        let mut counter = ByteCounter(0);
        // Writing to a counter cannot fail; a document that does not serialize is not
        // ours to judge here.
        let _ = serde_json::to_writer(&mut counter, doc);
        if counter.0 > self.max_document_bytes {
            return Err(ApiError::DocumentTooLarge(self.max_document_bytes));
        }
        Ok(())
    }
}

/// Counts the bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
