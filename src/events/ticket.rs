//! Stream tickets: a browser's `EventSource` cannot send an `Authorization` header, and a token
//! in a URL ends up in logs. An authenticated call gets a ticket instead: HMAC-signed with a
//! key that lives only in this process, valid for [`TICKET_TTL`], accepted once.
//!
//! Format: `base64url(user ‖ 0 ‖ expires (8 B BE) ‖ nonce (16 B)) "." base64url(HMAC-SHA256)`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wuts_store::gateway::UserId;

/// How long a ticket is valid.
pub const TICKET_TTL: Duration = Duration::from_secs(120);

/// Issues and redeems tickets.
pub struct Tickets {
    key: [u8; 32],
    /// Nonces already redeemed, with their expiry (forgotten once expired).
    used: Mutex<HashMap<[u8; 16], u64>>,
}

impl Tickets {
    /// Tickets signed with `key` (random per process).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            used: Mutex::default(),
        }
    }

    fn mac(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return Vec::new(),
        };
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    /// A ticket for `user`, valid until `now + TICKET_TTL`.
    pub fn issue(&self, user: &UserId, now: u64, nonce: [u8; 16]) -> (String, u64) {
        let expires = now + TICKET_TTL.as_secs();
        let mut payload = user.as_str().as_bytes().to_vec();
        payload.push(0);
        payload.extend_from_slice(&expires.to_be_bytes());
        payload.extend_from_slice(&nonce);
        let ticket = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(self.mac(&payload))
        );
        (ticket, expires)
    }

    /// The user a ticket was issued to, if it is genuine, unexpired and not used before; it
    /// is used up by this call.
    pub fn redeem(&self, ticket: &str, now: u64) -> Option<UserId> {
        let (payload, mac) = ticket.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = self.mac(&payload);
        if expected.is_empty()
            || !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &mac[..]))
        {
            return None;
        }
        let zero = payload.iter().position(|b| *b == 0)?;
        let user = UserId::new(std::str::from_utf8(payload.get(..zero)?).ok()?).ok()?;
        let rest = payload.get(zero + 1..)?;
        let expires = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
        let nonce: [u8; 16] = rest.get(8..24)?.try_into().ok()?;
        if expires <= now {
            return None;
        }
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        used.retain(|_, until| *until > now);
        if used.insert(nonce, expires).is_some() {
            return None;
        }
        Some(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_work_once_for_their_user_until_they_expire() -> Result<(), wuts_store::Error> {
        let tickets = Tickets::new([9; 32]);
        let user = UserId::new("u1")?;
        let (ticket, expires) = tickets.issue(&user, 1000, [1; 16]);
        assert_eq!(expires, 1000 + TICKET_TTL.as_secs());
        assert_eq!(tickets.redeem(&ticket, 1001), Some(user.clone()));
        assert_eq!(tickets.redeem(&ticket, 1002), None, "one use");
        let (late, _) = tickets.issue(&user, 1000, [2; 16]);
        assert_eq!(tickets.redeem(&late, expires), None, "expired");
        let (forged, _) = Tickets::new([8; 32]).issue(&user, 1000, [3; 16]);
        assert_eq!(tickets.redeem(&forged, 1001), None, "another key");
        assert_eq!(tickets.redeem("garbage", 1001), None);
        Ok(())
    }
}
