//! What a device task reports: the event a change of phase means, and a failed IQ as the
//! client layer's error.

use super::super::api::{DeviceEvent, DeviceState, DeviceStatus, Error, Reason};
use crate::engine::IqError;

/// The event a change of phase means, if any.
pub(super) fn transition_event(from: DeviceState, now: &DeviceStatus) -> Option<DeviceEvent> {
    let reason = || {
        now.reason.clone().unwrap_or(Reason {
            code: "unknown",
            message: "no reason given".to_owned(),
        })
    };
    Some(match now.state {
        DeviceState::Connected => DeviceEvent::Connected,
        DeviceState::Disconnected => DeviceEvent::Disconnected { reason: reason() },
        DeviceState::LoggedOut => DeviceEvent::LoggedOut { reason: reason() },
        DeviceState::Error => DeviceEvent::Error { reason: reason() },
        DeviceState::Unpaired if from == DeviceState::Pairing => match &now.reason {
            Some(r) if r.code == "pairing_timed_out" => DeviceEvent::PairingTimedOut,
            Some(r) => DeviceEvent::PairingFailed { reason: r.clone() },
            None => return None,
        },
        _ => return None,
    })
}

pub(super) fn iq_error(e: IqError) -> Error {
    match e {
        IqError::Rejected { code, text } => Error::Rejected { code, text },
        IqError::Timeout(waited) => Error::Timeout(waited),
        IqError::Disconnected => Error::NotConnected,
        IqError::Lost => Error::Interrupted,
    }
}
