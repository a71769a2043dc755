//! The lifecycle on virtual time: every command in every state, and every close reason.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::noise::{CertError, Error as NoiseError};

const S: Duration = Duration::from_secs(1);

fn cert_failure() -> CloseReason {
    CloseReason::Handshake(Arc::new(NoiseError::CertChain(
        CertError::IntermediateSignature,
    )))
}

fn drain(lc: &mut Lifecycle) -> Vec<Action> {
    std::iter::from_fn(|| lc.poll_action()).collect()
}

/// A device that paired and logged in.
fn connected() -> Lifecycle {
    let mut lc = Lifecycle::new(true, Settings::default());
    assert_eq!(drain(&mut lc), [Action::Connect]);
    lc.logged_in();
    assert_eq!(lc.phase(), Phase::Connected);
    lc
}

#[test]
fn a_new_device_waits_and_refuses_what_needs_pairing() {
    let mut lc = Lifecycle::new(false, Settings::default());
    assert_eq!(lc.phase(), Phase::Unpaired);
    assert!(drain(&mut lc).is_empty());
    assert_eq!(lc.iq_allowed(), Err(Refusal::NotPaired));
    assert_eq!(lc.command(S, Command::Connect), Err(Refusal::NotPaired));
    assert_eq!(lc.command(S, Command::Pair), Ok(()));
    assert_eq!(lc.phase(), Phase::Pairing);
    assert_eq!(drain(&mut lc), [Action::Connect]);
    assert_eq!(lc.iq_allowed(), Err(Refusal::NotPaired));
    assert_eq!(lc.command(S, Command::Pair), Err(Refusal::Pairing));
}

#[test]
fn pairing_then_restart_then_login() {
    let mut lc = Lifecycle::new(false, Settings::default());
    lc.command(S, Command::Pair).unwrap();
    drain(&mut lc);
    lc.paired();
    assert_eq!(lc.phase(), Phase::Connecting);
    lc.closed(2 * S, CloseReason::RestartRequired, 0.5);
    assert_eq!(drain(&mut lc), [Action::Connect]);
    lc.logged_in();
    assert_eq!(lc.phase(), Phase::Connected);
    assert_eq!(lc.iq_allowed(), Ok(()));
    assert_eq!(lc.command(S, Command::Pair), Err(Refusal::AlreadyPaired));
}

#[test]
fn a_timed_out_pairing_can_be_started_again() {
    let mut lc = Lifecycle::new(false, Settings::default());
    lc.command(S, Command::Pair).unwrap();
    drain(&mut lc);
    lc.closed(60 * S, CloseReason::PairingTimedOut, 0.5);
    assert_eq!(lc.phase(), Phase::Unpaired);
    assert_eq!(
        lc.reason().map(CloseReason::code),
        Some("pairing_timed_out")
    );
    assert_eq!(lc.command(61 * S, Command::Pair), Ok(()));
    assert_eq!(drain(&mut lc), [Action::Connect]);
}

#[test]
fn pair_during_an_unpaired_backoff_starts_pairing_at_once() {
    let mut lc = Lifecycle::new(false, Settings::default());
    lc.command(S, Command::Pair).unwrap();
    drain(&mut lc);
    lc.closed(2 * S, CloseReason::StreamError(Some(503)), 0.5);
    assert!(lc.poll_timeout().is_some());
    assert_eq!(lc.iq_allowed(), Err(Refusal::NotPaired));
    assert_eq!(lc.command(2 * S, Command::Pair), Ok(()));
    assert_eq!(drain(&mut lc), [Action::Connect]);
    assert_eq!(lc.poll_timeout(), None);
}

#[test]
fn a_lost_link_backs_off_then_reconnects_on_the_timer() {
    let mut lc = connected();
    lc.closed(10 * S, CloseReason::ServerClosed, 0.0);
    assert_eq!(lc.phase(), Phase::Disconnected);
    assert_eq!(lc.iq_allowed(), Err(Refusal::NotConnected));
    let at = lc.poll_timeout().expect("a reconnect is scheduled");
    assert!(at > 10 * S && at <= 11 * S, "{at:?}");
    lc.handle_timeout(at - Duration::from_millis(1));
    assert!(drain(&mut lc).is_empty());
    lc.handle_timeout(at);
    assert_eq!(drain(&mut lc), [Action::Connect]);
    assert_eq!(lc.phase(), Phase::Connecting);
}

#[test]
fn backoff_doubles_up_to_its_cap_and_resets_on_login() {
    let mut lc = connected();
    let mut now = Duration::ZERO;
    let mut delays = Vec::new();
    for _ in 0..9 {
        lc.closed(now, CloseReason::KeepaliveTimeout, 1.0);
        let at = lc.poll_timeout().unwrap();
        delays.push((at - now).as_secs());
        now = at;
        lc.handle_timeout(now);
        drain(&mut lc);
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    lc.logged_in();
    lc.closed(now, CloseReason::KeepaliveTimeout, 1.0);
    assert_eq!(lc.poll_timeout(), Some(now + S));
}

#[test]
fn connect_during_backoff_reconnects_now() {
    let mut lc = connected();
    lc.closed(S, CloseReason::StreamError(Some(503)), 0.5);
    assert_eq!(lc.command(S, Command::Connect), Ok(()));
    assert_eq!(
        drain(&mut lc),
        [Action::HoldOffline(false), Action::Connect]
    );
    assert_eq!(lc.poll_timeout(), None);
}

#[test]
fn a_logout_by_whatsapp_wipes_and_allows_pairing_again() {
    for why in [
        LogoutReason::DeviceRemoved,
        LogoutReason::StreamError401,
        LogoutReason::LoginRefused(401),
    ] {
        let mut lc = connected();
        lc.closed(S, CloseReason::LoggedOut(why.clone()), 0.5);
        assert_eq!(drain(&mut lc), [Action::Wipe(why.clone())]);
        assert_eq!(lc.command(S, Command::Pair), Err(Refusal::AlreadyPaired));
        lc.wiped(why.clone());
        assert_eq!(lc.phase(), Phase::LoggedOut);
        assert!(!lc.is_paired());
        assert_eq!(lc.reason().map(CloseReason::code), Some(why.code()));
        assert_eq!(lc.iq_allowed(), Err(Refusal::NotPaired));
        assert_eq!(lc.command(2 * S, Command::Pair), Ok(()));
        assert_eq!(drain(&mut lc), [Action::Connect]);
        assert_eq!(lc.phase(), Phase::Pairing);
    }
}

#[test]
fn logout_when_connected_tells_whatsapp_then_wipes() {
    let mut lc = connected();
    assert_eq!(lc.command(S, Command::Logout), Ok(()));
    assert_eq!(drain(&mut lc), [Action::Logout]);
    lc.closed(S, CloseReason::LoggedOut(LogoutReason::Requested), 0.5);
    assert_eq!(drain(&mut lc), [Action::Wipe(LogoutReason::Requested)]);
    lc.wiped(LogoutReason::Requested);
    assert_eq!(lc.phase(), Phase::LoggedOut);
}

#[test]
fn logout_when_offline_wipes_at_once() {
    let mut lc = connected();
    lc.closed(S, CloseReason::ServerClosed, 0.5);
    assert_eq!(lc.command(S, Command::Logout), Ok(()));
    assert_eq!(drain(&mut lc), [Action::Wipe(LogoutReason::Requested)]);
    assert_eq!(lc.poll_timeout(), None, "no reconnect after a logout");
}

#[test]
fn replaced_stops_until_told_to_connect() {
    let mut lc = connected();
    lc.closed(S, CloseReason::Replaced, 0.5);
    assert_eq!(lc.phase(), Phase::Disconnected);
    assert_eq!(lc.reason().map(CloseReason::code), Some("replaced"));
    assert_eq!(lc.poll_timeout(), None);
    lc.handle_timeout(100 * S);
    assert!(drain(&mut lc).is_empty(), "never fights for the session");
    assert_eq!(lc.command(100 * S, Command::Connect), Ok(()));
    assert_eq!(
        drain(&mut lc),
        [Action::HoldOffline(false), Action::Connect]
    );
}

#[test]
fn disconnect_keeps_credentials_and_stays_offline() {
    let mut lc = connected();
    assert_eq!(lc.command(S, Command::Disconnect), Ok(()));
    assert_eq!(drain(&mut lc), [Action::HoldOffline(true), Action::Close]);
    lc.closed(S, CloseReason::Local, 0.5);
    assert_eq!(lc.phase(), Phase::Disconnected);
    assert!(lc.is_paired());
    assert_eq!(lc.poll_timeout(), None);
    assert_eq!(lc.iq_allowed(), Err(Refusal::NotConnected));
    assert_eq!(lc.command(2 * S, Command::Connect), Ok(()));
    assert_eq!(
        drain(&mut lc),
        [Action::HoldOffline(false), Action::Connect]
    );
}

#[test]
fn a_device_held_offline_stays_offline_until_connect() {
    let mut lc = Lifecycle::held_offline(Settings::default());
    assert_eq!(lc.phase(), Phase::Disconnected);
    assert!(lc.is_paired());
    assert!(drain(&mut lc).is_empty(), "no connect at start");
    lc.handle_timeout(3600 * S);
    assert!(drain(&mut lc).is_empty());
    assert_eq!(lc.iq_allowed(), Err(Refusal::NotConnected));
    assert_eq!(lc.command(S, Command::Pair), Err(Refusal::AlreadyPaired));
    assert_eq!(lc.command(S, Command::Connect), Ok(()));
    assert_eq!(
        drain(&mut lc),
        [Action::HoldOffline(false), Action::Connect]
    );
}

#[test]
fn a_certificate_failure_is_an_error_retried_a_bounded_number_of_times() {
    let settings = Settings {
        fault_retries: 3,
        ..Settings::default()
    };
    let mut lc = Lifecycle::new(true, settings);
    drain(&mut lc);
    let mut now = Duration::ZERO;
    let mut connects = 1;
    loop {
        lc.closed(now, cert_failure(), 0.5);
        assert_eq!(lc.phase(), Phase::Error);
        assert_eq!(
            lc.reason().map(CloseReason::code),
            Some("certificate_invalid")
        );
        let Some(at) = lc.poll_timeout() else { break };
        now = at;
        lc.handle_timeout(now);
        assert_eq!(drain(&mut lc), [Action::Connect]);
        assert_eq!(
            lc.phase(),
            Phase::Error,
            "still visibly in error while retrying"
        );
        connects += 1;
    }
    assert_eq!(connects, 4, "one attempt and three retries");
    lc.handle_timeout(now + 3600 * S);
    assert!(drain(&mut lc).is_empty(), "parked until the operator acts");
    assert_eq!(lc.command(now, Command::Connect), Ok(()));
    assert_eq!(
        drain(&mut lc),
        [Action::HoldOffline(false), Action::Connect]
    );
}

#[test]
fn an_unpaired_handshake_failure_is_an_error_and_pair_retries() {
    let settings = Settings {
        fault_retries: 0,
        ..Settings::default()
    };
    let mut lc = Lifecycle::new(false, settings);
    lc.command(S, Command::Pair).unwrap();
    drain(&mut lc);
    lc.closed(S, cert_failure(), 0.5);
    assert_eq!(lc.phase(), Phase::Error);
    assert_eq!(lc.poll_timeout(), None);
    assert_eq!(lc.command(S, Command::Pair), Ok(()));
    assert_eq!(drain(&mut lc), [Action::Connect]);
}

#[test]
fn unreadable_stored_data_parks_the_device_in_error() {
    let reason = CloseReason::Protocol(super::super::ProtocolError::StoredIdentity);
    let lc = Lifecycle::faulted(reason, Settings::default());
    assert_eq!(lc.phase(), Phase::Error);
    assert_eq!(lc.reason().map(CloseReason::code), Some("protocol_error"));
}

#[test]
fn a_refused_first_login_after_pairing_is_an_interrupted_pairing() {
    // Saved, then the process died before WhatsApp accepted: at the next start the store
    // still says "unconfirmed".
    let mut lc = Lifecycle::new(true, Settings::default());
    lc.set_unconfirmed(true);
    drain(&mut lc);
    lc.closed(
        S,
        CloseReason::LoggedOut(LogoutReason::LoginRefused(401)),
        0.5,
    );
    assert_eq!(
        drain(&mut lc),
        [Action::Wipe(LogoutReason::PairingInterrupted)]
    );

    // Once a login was accepted the mark goes, and a later refusal is a real logout.
    let mut lc = Lifecycle::new(false, Settings::default());
    lc.command(S, Command::Pair).unwrap();
    drain(&mut lc);
    lc.paired();
    lc.closed(S, CloseReason::RestartRequired, 0.5);
    drain(&mut lc);
    lc.logged_in();
    assert_eq!(drain(&mut lc), [Action::ConfirmPairing]);
    lc.closed(
        2 * S,
        CloseReason::LoggedOut(LogoutReason::LoginRefused(401)),
        0.5,
    );
    assert_eq!(
        drain(&mut lc),
        [Action::Wipe(LogoutReason::LoginRefused(401))]
    );
}

#[test]
fn a_pairing_code_starts_pairing_or_reuses_the_open_pairing_connection() {
    let mut lc = Lifecycle::new(false, Settings::default());
    assert_eq!(lc.command(S, Command::PairCode), Ok(()));
    assert_eq!(lc.phase(), Phase::Pairing);
    assert_eq!(drain(&mut lc), [Action::Connect]);
    // Asked again (a refresh) while the pairing connection is open: no second connection.
    assert_eq!(lc.command(S, Command::PairCode), Ok(()));
    assert!(drain(&mut lc).is_empty());
    // QR pairing started first, then a code asked for: the same connection serves both.
    let mut qr = Lifecycle::new(false, Settings::default());
    qr.command(S, Command::Pair).unwrap();
    drain(&mut qr);
    assert_eq!(qr.command(S, Command::PairCode), Ok(()));
    assert!(drain(&mut qr).is_empty());
    // Paired and logged in: refused.
    assert_eq!(
        connected().command(S, Command::PairCode),
        Err(Refusal::AlreadyPaired)
    );
    // A code that timed out: pairing stops like a QR pairing, and can start again.
    lc.closed(200 * S, CloseReason::PairingTimedOut, 0.5);
    assert_eq!(lc.phase(), Phase::Unpaired);
    assert_eq!(lc.command(201 * S, Command::PairCode), Ok(()));
    assert_eq!(drain(&mut lc), [Action::Connect]);
}
