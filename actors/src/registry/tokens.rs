//! The registry's tokens: issued, revoked and forgotten once expired, through an index by
//! expiry (so the expired ones go oldest first, with no scan of every token) and one by
//! account (`--max-tokens-per-account`). The indexes are derived, not in snapshots.

use eventlog::AccountId;

use super::{Registry, Token};

impl Registry {
    pub(super) fn insert_token(&mut self, hash: String, token: Token) {
        // The same hash issued twice (a replayed record): the newer entry wins whole.
        self.remove_token(&hash);
        let key = (token.expiry_ms(), hash.clone());
        self.tokens_by_account
            .entry(token.account_id.clone())
            .or_default()
            .insert(key.clone());
        self.token_expiry.insert(key);
        self.tokens.insert(hash, token);
    }

    pub(super) fn remove_token(&mut self, hash: &str) {
        if let Some(token) = self.tokens.remove(hash) {
            self.unindex_token(hash, &token);
        }
    }

    pub(super) fn unindex_token(&mut self, hash: &str, token: &Token) {
        let key = (token.expiry_ms(), hash.to_owned());
        self.token_expiry.remove(&key);
        if let Some(of_account) = self.tokens_by_account.get_mut(&token.account_id) {
            of_account.remove(&key);
            if of_account.is_empty() {
                self.tokens_by_account.remove(&token.account_id);
            }
        }
    }

    /// Forgets every token whose expiry is at or before `now` (Unix ms).
    pub(super) fn forget_tokens_expired_at(&mut self, now: u64) {
        while let Some((expiry, hash)) = self.token_expiry.first().cloned() {
            if expiry > now {
                break;
            }
            self.remove_token(&hash);
        }
    }

    /// Rebuilds what is derived from the stored maps and not kept in snapshots (the
    /// matching candidates, the token indexes). Snapshot decoding calls it.
    pub fn rebuild_derived(&mut self) {
        self.candidates.clear();
        for hook in self.webhooks.values().filter(|h| h.enabled()) {
            self.candidates
                .entry(hook.account_id.clone())
                .or_default()
                .insert(hook);
        }
        self.token_expiry.clear();
        self.tokens_by_account.clear();
        for (hash, token) in &self.tokens {
            let key = (token.expiry_ms(), hash.clone());
            self.token_expiry.insert(key.clone());
            self.tokens_by_account
                .entry(token.account_id.clone())
                .or_default()
                .insert(key);
        }
    }

    /// The tokens (hashes, with their expiry) to revoke so that `account` may take one
    /// more and hold at most `max` unexpired at `now` (Unix ms): its oldest.
    pub fn tokens_to_revoke(
        &self,
        account: &AccountId,
        max: usize,
        now: u64,
    ) -> Vec<(String, u64)> {
        let Some(tokens) = self.tokens_by_account.get(account) else {
            return Vec::new();
        };
        let live: Vec<&(u64, String)> = tokens.iter().filter(|(expiry, _)| *expiry > now).collect();
        let excess = (live.len() + 1).saturating_sub(max.max(1));
        live.into_iter()
            .take(excess)
            .map(|(expiry, hash)| (hash.clone(), *expiry))
            .collect()
    }

    /// How many tokens are held in memory (unexpired, as of the last record applied).
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }
}
