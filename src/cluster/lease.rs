//! The node lease keeper: one heartbeat row per node in the database, renewed every `renew`;
//! a local deadline that ends `margin` before the row's expiry; a self-fence when it passes.
//!
//! Why the deadline is computed from the moment the renewal was *sent*: the database evaluates
//! `now() + ttl` after that moment, so `sent + ttl - margin` ends before the database's expiry
//! unless this node's monotonic clock runs more than `ttl / (ttl - margin)` times slower than
//! the database's (design §6.3). Nobody claims a device before expiry + grace, so safety needs
//! only `(ttl + grace) / (ttl - margin)`.
//!
//! After a self-fence, a successful renewal is not enough: the node must also reconcile (read
//! which devices it still owns at which epoch) before it serves again, so the keeper goes
//! through [`LeasePhase::Reconciling`].

use std::time::Duration;

/// The lease's timings. Production defaults: TTL 15 s, renew every 5 s, grace 5 s, margin 3 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long the database keeps a node row alive after a renewal.
    pub ttl: Duration,
    /// How often the node renews.
    pub renew: Duration,
    /// How long after expiry others wait before claiming a dead node's devices (lock-delay).
    pub grace: Duration,
    /// How much earlier than the database's expiry the node stops itself.
    pub margin: Duration,
}

impl LeaseTimings {
    /// Timings in the default proportions for a lease of `ttl`: renew and grace a third of
    /// it, the safety margin a fifth (15 s gives the defaults: 5 s, 5 s, 3 s).
    pub fn from_ttl(ttl: Duration) -> Self {
        LeaseTimings {
            ttl,
            renew: ttl / 3,
            grace: ttl / 3,
            margin: ttl / 5,
        }
    }
}

impl Default for LeaseTimings {
    fn default() -> Self {
        LeaseTimings {
            ttl: Duration::from_secs(15),
            renew: Duration::from_secs(5),
            grace: Duration::from_secs(5),
            margin: Duration::from_secs(3),
        }
    }
}

/// Timings that cannot keep a lease safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimingsError {
    /// The margin must leave room for at least one renewal before the deadline.
    #[error(
        "the lease margin ({margin:?}) plus the renew interval ({renew:?}) must be below the TTL ({ttl:?})"
    )]
    NoRoomToRenew {
        /// The TTL.
        ttl: Duration,
        /// The renew interval.
        renew: Duration,
        /// The margin.
        margin: Duration,
    },
    /// A zero renew interval would renew in a busy loop.
    #[error("the lease renew interval must be above zero")]
    ZeroRenew,
}

impl LeaseTimings {
    /// Checks that a renewal can land before the local deadline.
    pub fn check(&self) -> Result<(), TimingsError> {
        if self.renew.is_zero() {
            return Err(TimingsError::ZeroRenew);
        }
        if self.margin + self.renew >= self.ttl {
            return Err(TimingsError::NoRoomToRenew {
                ttl: self.ttl,
                renew: self.renew,
                margin: self.margin,
            });
        }
        Ok(())
    }
}

/// Where the keeper is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeasePhase {
    /// Never held (joining) or lost: the node serves no device.
    Unheld,
    /// Renewed after a fence: serving waits for the reconciliation.
    Reconciling {
        /// The local deadline the last renewal gave.
        deadline: Duration,
    },
    /// Held: devices may be served and sockets written until `deadline`.
    Held {
        /// The local deadline: the node stops itself when it passes.
        deadline: Duration,
    },
}

/// What the driver must do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// Send a renewal (the join upsert the first time), then report with
    /// [`LeaseKeeper::renewed`], [`LeaseKeeper::renew_failed`] or [`LeaseKeeper::lost`].
    Renew,
    /// The deadline passed: stop sending on every socket, close them, fail in-flight requests
    /// with `DEVICE_FAILOVER`. Returned once per loss.
    SelfFence,
    /// Renewed after a fence: read the devices still owned at their epochs, drop the others,
    /// then call [`LeaseKeeper::reconciled`].
    Reconcile,
}

/// The lease keeper. Feed it `now` (monotonic, as a duration since any fixed origin).
#[derive(Clone, Debug)]
pub struct LeaseKeeper {
    timings: LeaseTimings,
    phase: LeasePhase,
    /// When the renewal in flight was sent, if one is.
    in_flight: Option<Duration>,
    /// When the next renewal is due.
    next_renew: Duration,
    /// Consecutive failed renewals, for the retry pace.
    failures: u32,
    /// Whether the keeper held the lease at some point and then lost it (a fence is owed).
    fence_owed: bool,
    /// Whether `Reconcile` has been handed out for the current reconciliation.
    reconcile_asked: bool,
    /// Whether the lease was held once and lost since: the next hold needs a reconciliation.
    held_before: bool,
}

impl LeaseKeeper {
    /// A keeper that has not joined yet: its first action is a renewal (the join).
    pub fn new(timings: LeaseTimings, now: Duration) -> Result<Self, TimingsError> {
        timings.check()?;
        Ok(LeaseKeeper {
            timings,
            phase: LeasePhase::Unheld,
            in_flight: None,
            next_renew: now,
            failures: 0,
            fence_owed: false,
            reconcile_asked: false,
            held_before: false,
        })
    }

    /// The current phase.
    pub fn phase(&self) -> LeasePhase {
        self.phase
    }

    /// The timings in use.
    pub fn timings(&self) -> LeaseTimings {
        self.timings
    }

    /// Whether the node may write to a WhatsApp socket or serve a device at `now`. Checked
    /// before every send: a process resumed after a pause finds its deadline passed here first.
    pub fn may_serve(&self, now: Duration) -> bool {
        matches!(self.phase, LeasePhase::Held { deadline } if now < deadline)
    }

    /// The next moment [`LeaseKeeper::poll`] has something to do.
    pub fn next_wakeup(&self) -> Duration {
        let deadline = match self.phase {
            LeasePhase::Held { deadline } | LeasePhase::Reconciling { deadline } => deadline,
            LeasePhase::Unheld => Duration::MAX,
        };
        let renew = if self.in_flight.is_some() {
            Duration::MAX
        } else {
            self.next_renew
        };
        deadline.min(renew)
    }

    /// What to do at `now`, most urgent first; `None` when nothing is due. Call until `None`.
    pub fn poll(&mut self, now: Duration) -> Option<LeaseAction> {
        if let LeasePhase::Held { deadline } | LeasePhase::Reconciling { deadline } = self.phase
            && now >= deadline
        {
            self.lose();
        }
        if self.fence_owed {
            self.fence_owed = false;
            return Some(LeaseAction::SelfFence);
        }
        if matches!(self.phase, LeasePhase::Reconciling { .. }) && !self.reconcile_asked {
            self.reconcile_asked = true;
            return Some(LeaseAction::Reconcile);
        }
        if self.in_flight.is_none() && now >= self.next_renew {
            self.in_flight = Some(now);
            return Some(LeaseAction::Renew);
        }
        None
    }

    /// The renewal sent last succeeded (the database returned the row).
    pub fn renewed(&mut self, now: Duration) {
        let Some(sent) = self.in_flight.take() else {
            return;
        };
        self.failures = 0;
        self.next_renew = sent + self.timings.renew;
        let deadline = sent + self.timings.ttl - self.timings.margin;
        if now >= deadline {
            // The answer came too late to be of use: the lease may already be gone.
            self.lose();
            return;
        }
        self.phase = match self.phase {
            LeasePhase::Held { .. } => LeasePhase::Held { deadline },
            LeasePhase::Unheld if !self.held_before => LeasePhase::Held { deadline },
            LeasePhase::Unheld | LeasePhase::Reconciling { .. } => {
                // A reconciliation that failed is asked for again after each renewal.
                self.reconcile_asked = false;
                LeasePhase::Reconciling { deadline }
            }
        };
    }

    /// The renewal failed for a reason that may pass (timeout, connection reset): the deadline
    /// stays; retry sooner, at a third of the interval, so a blip does not cost the lease.
    pub fn renew_failed(&mut self, now: Duration) {
        if self.in_flight.take().is_none() {
            return;
        }
        self.failures = self.failures.saturating_add(1);
        self.next_renew = now + self.timings.renew / 3;
    }

    /// The renewal returned no row: another incarnation holds the node id, or the row expired
    /// and was taken over. The lease is gone at once.
    pub fn lost(&mut self, now: Duration) {
        self.in_flight = None;
        self.next_renew = now + self.timings.renew;
        self.lose();
    }

    /// The reconciliation after a fence is done: serve again.
    pub fn reconciled(&mut self) {
        if let LeasePhase::Reconciling { deadline } = self.phase {
            self.phase = LeasePhase::Held { deadline };
            self.reconcile_asked = false;
        }
    }

    /// Consecutive failed renewals.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn lose(&mut self) {
        if matches!(self.phase, LeasePhase::Held { .. }) {
            self.fence_owed = true;
        }
        if !matches!(self.phase, LeasePhase::Unheld) {
            self.held_before = true;
        }
        self.phase = LeasePhase::Unheld;
        self.reconcile_asked = false;
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
