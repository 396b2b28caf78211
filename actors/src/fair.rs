//! Fair sharing of the global delivery capacity (`--max-in-flight`) between accounts.
//!
//! A try needs a [`TryPermit`] to start. While permits are free, [`FairPermits::acquire`]
//! hands one out at once. When they run out, waiters queue per account, and each permit
//! given back goes to the next account in a round robin over the accounts with waiters:
//! an account with a thousand tries queued gets no more turns than one with a single try.
//! So however slow one account's receivers are, another account's next try starts as soon
//! as any try in flight ends, which is within one request timeout.
//!
//! What it must not do: know about webhooks, HTTP or the log. It is a pure scheduling
//! primitive, tested without sockets.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use eventlog::AccountId;
use parking_lot::Mutex;
use tokio::sync::oneshot;

#[cfg(test)]
mod tests;

/// The global try capacity, shared round robin between the accounts that wait for it.
pub struct FairPermits {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Permits no one holds.
    free: usize,
    /// Accounts with waiters, in the order they get their next turn.
    turns: VecDeque<AccountId>,
    /// Each waiting account's waiters, oldest first.
    waiters: HashMap<AccountId, VecDeque<oneshot::Sender<TryPermit>>>,
}

/// The right to run one try. Dropping it gives the permit to the next waiter.
pub struct TryPermit {
    pool: Arc<FairPermits>,
    /// False only for a permit that was never handed out (a waiter that gave up): it must
    /// not be given back twice.
    armed: bool,
}

impl Drop for TryPermit {
    fn drop(&mut self) {
        if self.armed {
            self.pool.release();
        }
    }
}

impl FairPermits {
    /// A pool of `permits` (at least one).
    pub fn new(permits: usize) -> Arc<FairPermits> {
        Arc::new(FairPermits {
            inner: Mutex::new(Inner {
                free: permits.max(1),
                ..Inner::default()
            }),
        })
    }

    /// Waits for a permit for a try of `account`. Cancel-safe: a waiter dropped before its
    /// turn loses nothing, and a permit handed to it meanwhile goes to the next waiter.
    pub async fn acquire(self: &Arc<Self>, account: &AccountId) -> TryPermit {
        let waiting = {
            let mut guard = self.inner.lock();
            let inner = &mut *guard;
            if inner.free > 0 && inner.turns.is_empty() {
                inner.free -= 1;
                return self.permit();
            }
            let (tx, rx) = oneshot::channel();
            let queue = inner.waiters.entry(account.clone()).or_default();
            if queue.is_empty() {
                inner.turns.push_back(account.clone());
            }
            queue.push_back(tx);
            rx
        };
        match waiting.await {
            Ok(permit) => permit,
            // The pool dropped our sender without a permit: it only does that when it is
            // itself dropped, which cannot happen while we hold an Arc to it.
            Err(_) => self.permit(),
        }
    }

    /// How many accounts wait for a permit now.
    pub fn waiting_accounts(&self) -> usize {
        self.inner.lock().turns.len()
    }

    fn permit(self: &Arc<Self>) -> TryPermit {
        TryPermit {
            pool: Arc::clone(self),
            armed: true,
        }
    }

    /// A permit came back: the account whose turn it is gets it, or it is kept free.
    fn release(self: &Arc<Self>) {
        let mut inner = self.inner.lock();
        loop {
            let Some(account) = inner.turns.pop_front() else {
                inner.free += 1;
                return;
            };
            let Some(queue) = inner.waiters.get_mut(&account) else {
                continue;
            };
            let waiter = queue.pop_front();
            if queue.is_empty() {
                inner.waiters.remove(&account);
            } else {
                inner.turns.push_back(account);
            }
            let Some(waiter) = waiter else {
                continue;
            };
            match waiter.send(self.permit()) {
                Ok(()) => return,
                // That waiter gave up; its permit was never handed out.
                Err(mut unsent) => unsent.armed = false,
            }
        }
    }
}
