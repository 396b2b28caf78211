use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::*;

fn account(n: u8) -> AccountId {
    AccountId::parse(&format!("{n:032x}")).expect("a valid account id")
}

/// Polls a future once: `Some` when it is ready now.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    match Pin::new(fut).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

type Acquire = Pin<Box<dyn Future<Output = TryPermit>>>;

fn acquire(pool: &Arc<FairPermits>, who: &AccountId) -> Acquire {
    let pool = Arc::clone(pool);
    let who = who.clone();
    Box::pin(async move { pool.acquire(&who).await })
}

#[test]
fn free_permits_are_handed_out_at_once_and_come_back_on_drop() {
    let pool = FairPermits::new(2);
    let a = account(1);
    let first = poll_once(&mut acquire(&pool, &a)).expect("a free permit");
    let second = poll_once(&mut acquire(&pool, &a)).expect("a free permit");
    let mut third = acquire(&pool, &a);
    assert!(
        poll_once(&mut third).is_none(),
        "no third permit while two are held"
    );
    drop(first);
    let third = poll_once(&mut third).expect("the released permit goes to the waiter");
    drop((second, third));
    assert_eq!(pool.inner.lock().free, 2, "every permit is back");
}

#[test]
fn a_waiting_account_gets_the_next_turn_however_many_tries_another_has_queued() {
    let pool = FairPermits::new(2);
    let (a, b) = (account(1), account(2));
    let held: Vec<TryPermit> = (0..2)
        .map(|_| poll_once(&mut acquire(&pool, &a)).expect("free"))
        .collect();
    // A queues 100 more tries before B queues its one.
    let mut a_waiting: Vec<Acquire> = (0..100).map(|_| acquire(&pool, &a)).collect();
    for w in &mut a_waiting {
        assert!(poll_once(w).is_none());
    }
    let mut b_waiting = acquire(&pool, &b);
    assert!(poll_once(&mut b_waiting).is_none());
    assert_eq!(pool.waiting_accounts(), 2);

    // Two of A's tries end: the first permit goes to A (its turn came first), the second
    // to B, not to A's 99 others.
    let mut held = held.into_iter();
    drop(held.next());
    let a_next = poll_once(&mut a_waiting[0]).expect("A's turn");
    drop(held.next());
    let b_first = poll_once(&mut b_waiting).expect("B's one try starts at the second release");
    assert!(
        poll_once(&mut a_waiting[1]).is_none(),
        "A waits for its next turn"
    );
    drop((a_next, b_first));
}

#[test]
fn turns_alternate_between_accounts_with_waiters() {
    let pool = FairPermits::new(1);
    let (a, b) = (account(1), account(2));
    let mut current = poll_once(&mut acquire(&pool, &a)).expect("free");
    let mut waiting: Vec<(char, Acquire)> = Vec::new();
    for _ in 0..3 {
        waiting.push(('a', acquire(&pool, &a)));
    }
    for _ in 0..3 {
        waiting.push(('b', acquire(&pool, &b)));
    }
    for (_, w) in &mut waiting {
        assert!(poll_once(w).is_none());
    }
    let mut order = String::new();
    for _ in 0..6 {
        drop(current);
        let granted = waiting
            .iter_mut()
            .enumerate()
            .find_map(|(i, (_, w))| poll_once(w).map(|permit| (i, permit)));
        let (i, permit) = granted.expect("one waiter got the released permit");
        order.push(waiting.remove(i).0);
        for (_, w) in &mut waiting {
            assert!(poll_once(w).is_none(), "one permit only");
        }
        current = permit;
    }
    drop(current);
    assert_eq!(order, "ababab");
}

#[test]
fn a_waiter_that_gives_up_loses_no_permit() {
    let pool = FairPermits::new(1);
    let (a, b) = (account(1), account(2));
    let held = poll_once(&mut acquire(&pool, &a)).expect("free");
    let mut gives_up = acquire(&pool, &a);
    assert!(poll_once(&mut gives_up).is_none());
    let mut stays = acquire(&pool, &b);
    assert!(poll_once(&mut stays).is_none());
    drop(gives_up);
    drop(held);
    assert!(
        poll_once(&mut stays).is_some(),
        "the permit skips the waiter that left"
    );
}

#[test]
fn a_permit_sent_to_a_waiter_dropped_before_it_ran_comes_back() {
    let pool = FairPermits::new(1);
    let a = account(1);
    let held = poll_once(&mut acquire(&pool, &a)).expect("free");
    let mut waiter = acquire(&pool, &a);
    assert!(poll_once(&mut waiter).is_none());
    // The permit is sent into the waiter's channel, then the waiter goes away unpolled.
    drop(held);
    drop(waiter);
    assert_eq!(pool.inner.lock().free, 1);
    assert!(poll_once(&mut acquire(&pool, &a)).is_some());
}
