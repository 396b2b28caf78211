//! The deliveries one webhook actor owes, and which of them may start: per-call order,
//! retries waiting for their time, the tries in flight and those being recorded.
//!
//! Pure: no actor, no clock, no I/O. The caller passes the current time, and a method
//! that leaves a delivery waiting for a later time returns the [`Timer`] the caller must
//! set (the actor turns it into a `send_after` of `Due`). Every step costs O(log n)
//! whatever the backlog: every call's deliveries are kept in sequence order (only the
//! first may run), beside the set of deliveries that may start now.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use crate::registry::PendingDelivery;

/// A timer the caller must set: the delivery `seq` is due at `at_ms` (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timer {
    pub(super) seq: u64,
    pub(super) at_ms: u64,
}

impl Timer {
    /// How long from `now` (Unix ms) until it fires.
    pub(super) fn wait(&self, now: u64) -> Duration {
        Duration::from_millis(self.at_ms.saturating_sub(now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Behind an earlier delivery of the same call, or not looked at yet.
    Waiting,
    /// May start now: in `Queue::ready`.
    Ready,
    /// A timer will make it due at `next_try_at_ms`.
    Scheduled,
    InFlight,
    /// Tried; waiting for the attempt record to be durable.
    Recording,
}

#[derive(Debug)]
struct Job {
    delivery: PendingDelivery,
    phase: Phase,
    /// Its event's ordering key (see `AcceptedEvent::ordering_key`).
    key: Option<String>,
}

/// The deliveries an actor owes, organised so each step costs O(log n).
#[derive(Debug, Default)]
pub(super) struct Queue {
    jobs: BTreeMap<u64, Job>,
    calls: HashMap<String, VecDeque<u64>>,
    ready: BTreeSet<u64>,
    in_flight: usize,
    recording: usize,
}

impl Queue {
    /// Takes a delivery (once: a known sequence is ignored).
    pub(super) fn insert(&mut self, delivery: PendingDelivery, now: u64) -> Option<Timer> {
        let seq = delivery.event.seq;
        if self.jobs.contains_key(&seq) {
            return None;
        }
        let key = delivery.event.ordering_key();
        self.jobs.insert(
            seq,
            Job {
                delivery,
                phase: Phase::Waiting,
                key: key.clone(),
            },
        );
        let Some(call) = key else {
            return self.consider(seq, now);
        };
        let queue = self.calls.entry(call).or_default();
        // Deliveries arrive in sequence order; keep the order even if one does not.
        let at = queue.partition_point(|s| *s < seq);
        queue.insert(at, seq);
        if at != 0 {
            return None;
        }
        if let Some(&displaced) = queue.get(1) {
            // A new head: the old one waits again, unless it already started.
            if let Some(job) = self.jobs.get_mut(&displaced) {
                if matches!(job.phase, Phase::Ready | Phase::Scheduled) {
                    job.phase = Phase::Waiting;
                    self.ready.remove(&displaced);
                }
            }
        }
        self.consider(seq, now)
    }

    /// A delivery that may go next: ready now, or a timer for when it is due.
    fn consider(&mut self, seq: u64, now: u64) -> Option<Timer> {
        let job = self.jobs.get_mut(&seq)?;
        if job.phase != Phase::Waiting {
            return None;
        }
        if job.delivery.next_try_at_ms <= now {
            job.phase = Phase::Ready;
            self.ready.insert(seq);
            None
        } else {
            job.phase = Phase::Scheduled;
            Some(Timer {
                seq,
                at_ms: job.delivery.next_try_at_ms,
            })
        }
    }

    /// A timer fired.
    pub(super) fn due(&mut self, seq: u64, now: u64) -> Option<Timer> {
        let job = self.jobs.get_mut(&seq)?;
        if job.phase != Phase::Scheduled {
            return None;
        }
        job.phase = Phase::Waiting;
        self.consider(seq, now)
    }

    /// The next delivery to start, if the bound allows.
    pub(super) fn next_to_start(&mut self, max_in_flight: usize) -> Option<PendingDelivery> {
        if self.in_flight >= max_in_flight {
            return None;
        }
        let seq = self.ready.pop_first()?;
        let job = self.jobs.get_mut(&seq)?;
        job.phase = Phase::InFlight;
        self.in_flight += 1;
        Some(job.delivery.clone())
    }

    /// A try came back; its record is being written.
    pub(super) fn tried(&mut self, seq: u64) -> Option<&PendingDelivery> {
        let job = self.jobs.get_mut(&seq)?;
        if job.phase == Phase::InFlight {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        job.phase = Phase::Recording;
        self.recording += 1;
        Some(&job.delivery)
    }

    /// The try's record is durable (`counted`) or could not be written: the delivery
    /// waits for its next try at `next_try_at_ms`.
    pub(super) fn retry_at(
        &mut self,
        seq: u64,
        next_try_at_ms: u64,
        counted: bool,
        now: u64,
    ) -> Option<Timer> {
        let job = self.jobs.get_mut(&seq)?;
        if job.phase == Phase::Recording {
            self.recording = self.recording.saturating_sub(1);
        }
        if counted {
            job.delivery.tries_done += 1;
        }
        job.delivery.next_try_at_ms = next_try_at_ms;
        job.phase = Phase::Waiting;
        self.consider(seq, now)
    }

    /// The delivery is finished: the next one of its call may go.
    pub(super) fn finish(&mut self, seq: u64, now: u64) -> Option<Timer> {
        let job = self.jobs.remove(&seq)?;
        match job.phase {
            Phase::Recording => self.recording = self.recording.saturating_sub(1),
            Phase::InFlight => self.in_flight = self.in_flight.saturating_sub(1),
            _ => {}
        }
        self.ready.remove(&seq);
        let call = job.key?;
        let mut next = None;
        if let Some(queue) = self.calls.get_mut(&call) {
            queue.retain(|s| *s != seq);
            next = queue.front().copied();
            if queue.is_empty() {
                self.calls.remove(&call);
            }
        }
        self.consider(next?, now)
    }

    /// Whether the delivery of event `seq` is held (waiting, running or recording).
    pub(super) fn contains(&self, seq: u64) -> bool {
        self.jobs.contains_key(&seq)
    }

    /// Whether no delivery is owed at all.
    pub(super) fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Whether a try is in flight or being recorded.
    pub(super) fn busy(&self) -> bool {
        self.in_flight > 0 || self.recording > 0
    }
}

#[cfg(test)]
mod tests;
