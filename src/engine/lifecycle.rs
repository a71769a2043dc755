//! A device's life across connections, sans-IO: which commands it takes in which state, and
//! what follows a connection's end. The driver feeds it commands, connection outcomes and `now`,
//! and carries out the [`Action`]s it polls; timers come from [`Lifecycle::poll_timeout`].
//!
//! ```text
//!  unpaired --pair--> pairing --paired, 515--> connecting --success--> connected
//!     ^                  |  timed out / refused      ^  |                 |
//!     |                  v                           |  v  lost link      v
//!     +---------------- unpaired             backoff <--+            disconnected (replaced,
//!  logged out <--wipe-- (logged out by WhatsApp, logout, device_removed)   disconnect; waits
//!  error: certificate / handshake faults, retried a bounded number of times      for connect)
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use super::{Backoff, CloseReason, LogoutReason, NextStep};

/// Where a device is, as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// No credentials accepted by WhatsApp; not trying to pair.
    Unpaired,
    /// Connected without credentials, showing QR codes (or about to).
    Pairing,
    /// Paired; connecting or logging in.
    Connecting,
    /// Logged in and usable.
    Connected,
    /// Paired and offline: waiting to reconnect, or stopped until told to connect (replaced by
    /// another login, disconnected on request).
    Disconnected,
    /// Logged out (by WhatsApp, the phone, or the API); credentials wiped, ready to pair again.
    LoggedOut,
    /// A fault that needs the operator if it persists (wrong root key, tampered certificate,
    /// unreadable stored identity); retried a bounded number of times.
    Error,
}

impl Phase {
    /// The API's name for it (`unpaired`, `pairing`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Unpaired => "unpaired",
            Phase::Pairing => "pairing",
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Disconnected => "disconnected",
            Phase::LoggedOut => "logged_out",
            Phase::Error => "error",
        }
    }
}

/// What the operator asks of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start pairing (QR codes follow).
    Pair,
    /// Pair by phone-number code: start pairing as [`Command::Pair`] does, or, on a pairing
    /// connection already open, let the driver ask that connection for a (new) code.
    PairCode,
    /// Connect with the stored credentials now (after a stop, a disconnect, or during backoff).
    Connect,
    /// Drop the connection, keep the credentials; stay offline until `Connect`.
    Disconnect,
    /// Log out on WhatsApp's side (when connected) and wipe the credentials.
    Logout,
}

/// Why a command cannot be carried out in the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Pairing asked of a device that is paired.
    #[error("the device is already paired")]
    AlreadyPaired,
    /// Pairing asked of a device that is pairing already.
    #[error("the device is already pairing: show its current QR code")]
    Pairing,
    /// Something that needs credentials, on a device without.
    #[error("the device is not paired")]
    NotPaired,
    /// Something that needs a connection, on a paired device that is offline.
    #[error("the device is not connected")]
    NotConnected,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a socket and start a connection (registration or login, as the store says).
    Connect,
    /// Close the live connection from our side.
    Close,
    /// Log the live connection out (tell WhatsApp), then close it.
    Logout,
    /// Wipe the credentials (fresh keys, no pairing), then call [`Lifecycle::wiped`].
    Wipe(LogoutReason),
    /// The first login accepted a new pairing: clear its "unconfirmed" mark in the store.
    ConfirmPairing,
    /// Remember in the store whether the operator holds the device offline, so a restart
    /// keeps a disconnected device disconnected.
    HoldOffline(bool),
}

/// Tuning, with production defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Reconnect backoff: first delay and cap.
    pub backoff: (Duration, Duration),
    /// How many times a fault ([`NextStep::Fault`]) is retried before the device parks in
    /// [`Phase::Error`] until a command.
    pub fault_retries: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backoff: (Duration::from_secs(1), Duration::from_secs(60)),
            fault_retries: 5,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    /// No connection, nothing scheduled: waits for a command.
    Idle,
    /// A connection is being opened or is open (pairing, logging in, or logged in).
    Live { logged_in: bool },
    /// Waiting to reconnect.
    Waiting { until: Duration },
    /// Logging out: waiting for the live connection to end, then wipe.
    LoggingOut,
    /// Waiting for the wipe to finish.
    Wiping,
}

/// One device's lifecycle.
#[derive(Debug)]
pub struct Lifecycle {
    state: State,
    phase: Phase,
    paired: bool,
    /// Whether a connection without credentials should pair (the operator asked).
    want_pairing: bool,
    /// Why the device is in `Disconnected`, `LoggedOut` or `Error`, for operators.
    reason: Option<CloseReason>,
    backoff: Backoff,
    faults: u32,
    settings: Settings,
    actions: VecDeque<Action>,
    pending_logout: Option<LogoutReason>,
    /// Credentials saved but not yet accepted by a login: a refusal then means the pairing was
    /// interrupted, not that the phone logged the device out.
    unconfirmed: bool,
}

impl Lifecycle {
    /// A device that has credentials (`paired`) connects at once; one without waits for `pair`.
    pub fn new(paired: bool, settings: Settings) -> Self {
        let mut lc = Lifecycle {
            state: State::Idle,
            phase: Phase::Unpaired,
            paired,
            want_pairing: false,
            reason: None,
            backoff: Backoff::new(settings.backoff.0, settings.backoff.1),
            faults: 0,
            settings,
            actions: VecDeque::new(),
            pending_logout: None,
            unconfirmed: false,
        };
        if paired {
            lc.connect();
        }
        lc
    }

    /// A paired device the operator disconnected (and a restart must keep offline): parked in
    /// `disconnected` until `connect`.
    pub fn held_offline(settings: Settings) -> Self {
        let mut lc = Lifecycle::new(false, settings);
        lc.paired = true;
        lc.phase = Phase::Disconnected;
        lc.reason = Some(CloseReason::Local);
        lc
    }

    /// A device whose stored data cannot be read: parked in `error` until a command.
    pub fn faulted(reason: CloseReason, settings: Settings) -> Self {
        let mut lc = Lifecycle::new(false, settings);
        lc.phase = Phase::Error;
        lc.reason = Some(reason);
        lc
    }

    /// Where the device is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why it is disconnected, logged out or in error (the last close), if it is.
    pub fn reason(&self) -> Option<&CloseReason> {
        match self.phase {
            Phase::Disconnected | Phase::LoggedOut | Phase::Error | Phase::Unpaired => {
                self.reason.as_ref()
            }
            _ => None,
        }
    }

    /// Whether credentials are stored.
    pub fn is_paired(&self) -> bool {
        self.paired
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Lifecycle::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            State::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// Whether an IQ may go out now, and if not, why.
    pub fn iq_allowed(&self) -> Result<(), Refusal> {
        match (&self.state, self.paired) {
            (State::Live { logged_in: true }, _) => Ok(()),
            (_, false) => Err(Refusal::NotPaired),
            (_, true) => Err(Refusal::NotConnected),
        }
    }

    /// An operator's command.
    pub fn command(&mut self, now: Duration, cmd: Command) -> Result<(), Refusal> {
        let _ = now;
        match cmd {
            Command::Pair => {
                if self.paired {
                    return Err(Refusal::AlreadyPaired);
                }
                match self.state {
                    State::Live { .. } => Err(Refusal::Pairing),
                    State::LoggingOut | State::Wiping => Err(Refusal::Pairing),
                    State::Idle | State::Waiting { .. } => {
                        self.start_pairing();
                        Ok(())
                    }
                }
            }
            Command::PairCode => {
                if self.paired {
                    return Err(Refusal::AlreadyPaired);
                }
                match self.state {
                    State::Live { .. } => Ok(()),
                    State::LoggingOut | State::Wiping => Err(Refusal::Pairing),
                    State::Idle | State::Waiting { .. } => {
                        self.start_pairing();
                        Ok(())
                    }
                }
            }
            Command::Connect => {
                if !self.paired {
                    return Err(Refusal::NotPaired);
                }
                match self.state {
                    State::Live { .. } | State::LoggingOut | State::Wiping => Ok(()),
                    State::Idle | State::Waiting { .. } => {
                        self.faults = 0;
                        self.backoff.reset();
                        self.actions.push_back(Action::HoldOffline(false));
                        self.connect();
                        Ok(())
                    }
                }
            }
            Command::Disconnect => {
                if self.paired {
                    self.actions.push_back(Action::HoldOffline(true));
                }
                match self.state {
                    State::Live { .. } => self.actions.push_back(Action::Close),
                    State::Waiting { .. } => self.state = State::Idle,
                    _ => {}
                }
                self.want_pairing = false;
                if matches!(self.state, State::Idle | State::Live { .. }) {
                    self.reason = Some(CloseReason::Local);
                    self.phase = if self.paired {
                        Phase::Disconnected
                    } else {
                        Phase::Unpaired
                    };
                }
                Ok(())
            }
            Command::Logout => {
                self.want_pairing = false;
                match self.state {
                    State::Live { .. } => {
                        self.pending_logout = Some(LogoutReason::Requested);
                        self.state = State::LoggingOut;
                        self.actions.push_back(Action::Logout);
                    }
                    State::LoggingOut | State::Wiping => {}
                    State::Idle | State::Waiting { .. } => self.wipe(LogoutReason::Requested),
                }
                Ok(())
            }
        }
    }

    fn start_pairing(&mut self) {
        self.want_pairing = true;
        self.faults = 0;
        self.backoff.reset();
        self.connect();
    }

    /// The driver has a fresh connection under way (after [`Action::Connect`]).
    fn connect(&mut self) {
        self.state = State::Live { logged_in: false };
        self.phase = if self.paired {
            Phase::Connecting
        } else {
            Phase::Pairing
        };
        self.actions.push_back(Action::Connect);
    }

    /// Whether the stored pairing still waits for its first accepted login (read from the
    /// store when a connection starts).
    pub fn set_unconfirmed(&mut self, unconfirmed: bool) {
        self.unconfirmed = unconfirmed;
    }

    /// Pairing completed and is durable (and unconfirmed until the first login).
    pub fn paired(&mut self) {
        self.unconfirmed = true;
        self.paired = true;
        self.want_pairing = false;
        self.phase = Phase::Connecting;
    }

    /// `success`: logged in.
    pub fn logged_in(&mut self) {
        if let State::Live { logged_in } = &mut self.state {
            *logged_in = true;
            if self.unconfirmed {
                self.unconfirmed = false;
                self.actions.push_back(Action::ConfirmPairing);
            }
            self.phase = Phase::Connected;
            self.reason = None;
            self.faults = 0;
            self.backoff.reset();
        }
    }

    /// The connection ended (or could not be opened). `jitter` is a random number in
    /// `0.0..1.0` for the backoff.
    pub fn closed(&mut self, now: Duration, reason: CloseReason, jitter: f64) {
        match self.state {
            State::LoggingOut => {
                let why = self
                    .pending_logout
                    .take()
                    .unwrap_or(LogoutReason::Requested);
                return self.wipe(why);
            }
            State::Live { .. } => {}
            // A close we already accounted for (disconnect moved us to idle).
            _ => return,
        }
        if matches!(reason, CloseReason::Local) {
            self.state = State::Idle;
            return;
        }
        match reason.next_step() {
            NextStep::ReconnectNow => self.connect(),
            NextStep::LoggedOut => {
                let why = match &reason {
                    CloseReason::LoggedOut(
                        LogoutReason::LoginRefused(_) | LogoutReason::StreamError401,
                    ) if self.unconfirmed => LogoutReason::PairingInterrupted,
                    CloseReason::LoggedOut(r) => r.clone(),
                    _ => LogoutReason::Conflict,
                };
                self.wipe(why);
            }
            NextStep::Stop => {
                self.state = State::Idle;
                self.want_pairing = false;
                self.phase = if self.paired {
                    Phase::Disconnected
                } else {
                    Phase::Unpaired
                };
                self.reason = Some(reason);
            }
            NextStep::Backoff => {
                self.schedule(now, jitter);
                self.phase = if self.paired {
                    Phase::Disconnected
                } else {
                    Phase::Pairing
                };
                self.reason = Some(reason);
            }
            NextStep::Fault => {
                self.faults += 1;
                self.phase = Phase::Error;
                self.reason = Some(reason);
                if self.faults > self.settings.fault_retries {
                    self.state = State::Idle;
                    self.want_pairing = false;
                } else {
                    self.schedule(now, jitter);
                }
            }
        }
    }

    fn schedule(&mut self, now: Duration, jitter: f64) {
        let delay = self.backoff.next_delay(jitter);
        self.state = State::Waiting { until: now + delay };
    }

    fn wipe(&mut self, why: LogoutReason) {
        self.state = State::Wiping;
        self.actions.push_back(Action::Wipe(why));
    }

    /// The wipe is done: the device has fresh keys and no pairing.
    pub fn wiped(&mut self, why: LogoutReason) {
        self.paired = false;
        self.want_pairing = false;
        self.state = State::Idle;
        self.phase = Phase::LoggedOut;
        self.reason = Some(CloseReason::LoggedOut(why));
    }

    /// Timers (the backoff).
    pub fn handle_timeout(&mut self, now: Duration) {
        if let State::Waiting { until } = self.state {
            if until <= now {
                if self.paired || self.want_pairing {
                    let phase = self.phase;
                    self.connect();
                    if phase == Phase::Error {
                        // Stay visibly in error while retrying a fault.
                        self.phase = Phase::Error;
                    }
                } else {
                    self.state = State::Idle;
                    self.phase = Phase::Unpaired;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
