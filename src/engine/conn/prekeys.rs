//! Keeping the server's copy of our key bundle right, after each login (facts §5.5):
//!
//! 1. `count`: below [`EngineConfig::min_pre_keys`](crate::engine::EngineConfig) one-time
//!    keys, upload more (812 when it has none, as WA Web);
//! 2. `digest` (WA Web `WAWebDigestKeyJob`): the server's SHA-1 over the bundle it holds is
//!    compared with one over ours; a 404 (no bundle) or a mismatch re-uploads it;
//! 3. the signed pre-key is replaced on WhatsApp Web's schedule ([`rotation`]): stored durably
//!    first, then sent with `<rotate>`.
//!
//! Store work leaves as events ([`Event::NeedPreKeys`], [`Event::CheckDigest`],
//! [`Event::SaveSignedPreKey`]) that the driver answers; the schedule's clock is wall time the
//! driver passed in ([`super::Resume`]).

use std::time::Duration;

use wuts_store as store;

use super::{Connection, Event, Internal, IqError};
use crate::binary::Node;
use crate::engine::keys;
use crate::ops::IqSpec;
use crate::ops::prekeys::{Count, Digest, KeyDigest, Rotate, Upload, bundle_hash};

/// What the connection tracks of the key upkeep.
#[derive(Debug, Default)]
pub(super) struct Upkeep {
    /// A [`Event::NeedPreKeys`] is out.
    pub(super) requested: bool,
    /// This connection asked for the digest already (once per login).
    digest_asked: bool,
    /// Unix seconds the server got the current signed pre-key; `None`: never recorded.
    rotated_at: Option<u64>,
    /// When the next rotation is due, on the connection's clock.
    rotate_at: Option<Duration>,
    /// A new signed pre-key on its way to the store or the server.
    rotating: Option<store::SignedPreKey>,
}

impl Upkeep {
    pub(super) fn new(rotated_at: Option<u64>) -> Self {
        Upkeep {
            rotated_at,
            ..Upkeep::default()
        }
    }

    /// The rotation deadline, for [`Connection::poll_timeout`].
    pub(super) fn deadline(&self) -> Option<Duration> {
        self.rotate_at
    }
}

/// What the rotation schedule says now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Never recorded (a device paired before the schedule was kept): start counting from now
    /// without rotating, as whatsapp-rust does.
    Baseline,
    /// Due in this many seconds.
    In(u64),
    /// Due now.
    Due,
}

/// The schedule as a pure function: last rotation (unix seconds), now, interval.
pub fn rotation(last: Option<u64>, now: u64, interval: Duration) -> Rotation {
    let Some(last) = last else {
        return Rotation::Baseline;
    };
    let elapsed = now.saturating_sub(last);
    match interval.as_secs().checked_sub(elapsed) {
        Some(left) if left > 0 => Rotation::In(left),
        _ => Rotation::Due,
    }
}

impl Connection {
    /// The driver prepared the pre-keys [`Event::NeedPreKeys`] asked for (durably stored and
    /// marked uploaded): send them.
    pub fn pre_keys_ready(&mut self, now: Duration, keys: &[store::OneTimePreKey]) {
        self.upkeep.requested = false;
        if !self.is_logged_in() || keys.is_empty() {
            return self.check_digest(now);
        }
        self.upload(now, keys);
    }

    /// The driver loaded the one-time keys an [`Event::CheckDigest`] listed that the store
    /// holds, in the digest's order: compare, re-upload on any difference.
    pub fn digest_keys_loaded(
        &mut self,
        now: Duration,
        digest: &KeyDigest,
        held: &[store::OneTimePreKey],
    ) {
        if !self.is_logged_in() {
            return;
        }
        let hash = bundle_hash(
            self.keys.identity.public.as_bytes(),
            &self.keys.signed_pre_key,
            held.iter().map(|k| k.key_pair.public.as_bytes().as_slice()),
        );
        let same = held.len() == digest.pre_key_ids.len()
            && digest.registration_id == self.keys.registration_id.get()
            && digest.signed_pre_key_id == self.keys.signed_pre_key.id.get()
            && digest.hash == hash;
        if same {
            return self.schedule_rotation(now);
        }
        tracing::warn!(
            device = self.device.get(),
            listed = digest.pre_key_ids.len(),
            held = held.len(),
            "the server's key bundle differs from ours: uploading it again"
        );
        self.upload(now, held);
    }

    /// The driver stored the new signed pre-key of [`Event::SaveSignedPreKey`] (or failed to):
    /// only a durable key is sent.
    pub fn signed_pre_key_saved(&mut self, now: Duration, result: Result<(), store::Error>) {
        let Some(key) = self.upkeep.rotating.take() else {
            return;
        };
        if let Err(e) = result {
            tracing::warn!(device = self.device.get(), error = %e, "signed pre-key not stored");
            return;
        }
        self.keys.signed_pre_key = key;
        if !self.is_logged_in() {
            return; // the next login's digest sends it
        }
        let iq = Rotate {
            key: &self.keys.signed_pre_key,
        }
        .iq();
        let deadline = now + self.config.iq_timeout;
        self.send_internal(now, iq, Internal::Rotate, deadline);
    }

    /// Right after `success`: how many one-time keys the server holds.
    pub(super) fn start_key_upkeep(&mut self, now: Duration) {
        let deadline = now + self.config.iq_timeout;
        self.send_internal(now, Count.iq(), Internal::PreKeyCount, deadline);
    }

    /// Replies to the upkeep's IQs.
    pub(super) fn finish_key_iq(
        &mut self,
        now: Duration,
        kind: Internal,
        r: Result<Node, IqError>,
    ) {
        match kind {
            Internal::PreKeyCount => {
                // An unreadable count reads as none left: uploading too many is harmless.
                let count = r.ok().and_then(|n| Count.parse(&n).ok()).unwrap_or(0);
                if count >= self.config.min_pre_keys {
                    return self.check_digest(now);
                }
                let (empty, more) = self.config.pre_key_batch;
                self.request_pre_keys(if count == 0 { empty } else { more });
            }
            Internal::PreKeyUpload => {
                if let Err(e) = r {
                    tracing::warn!(device = self.device.get(), error = ?e, "pre-keys refused");
                }
                self.check_digest(now);
            }
            Internal::Digest => match r.map(|n| Digest.parse(&n)) {
                Ok(Ok(digest)) => self.events.push_back(Event::CheckDigest(Box::new(digest))),
                // WA Web: no bundle on the server (404) is answered with a full upload.
                Err(IqError::Rejected { code: 404, .. }) => {
                    tracing::warn!(device = self.device.get(), "the server holds no key bundle");
                    self.request_pre_keys(self.config.pre_key_batch.0);
                }
                Ok(Err(e)) => {
                    tracing::warn!(device = self.device.get(), error = %e, "digest unreadable");
                    self.schedule_rotation(now);
                }
                Err(e) => {
                    tracing::warn!(device = self.device.get(), error = ?e, "digest refused");
                    self.schedule_rotation(now);
                }
            },
            Internal::Rotate => match r {
                Ok(_) => {
                    let at = self.unix(now);
                    self.upkeep.rotated_at = Some(at);
                    self.events.push_back(Event::SignedPreKeyRotated { at });
                    self.schedule_rotation(now);
                }
                // The store has the new key, the server the old one: the next login's digest
                // differs and re-uploads it.
                Err(e) => {
                    tracing::warn!(device = self.device.get(), error = ?e, "rotation refused")
                }
            },
            _ => {}
        }
    }

    /// The server says its stock of one-time keys is low
    /// (`<notification type="encrypt"><count value=N/>`, whatsmeow `handleEncryptNotification`).
    pub(super) fn low_pre_keys(&mut self, count: u32) {
        if self.is_logged_in()
            && count < self.config.min_pre_keys
            && !self.iq.has_internal(Internal::PreKeyUpload)
        {
            self.request_pre_keys(self.config.pre_key_batch.1);
        }
    }

    /// Timers: a rotation that came due while connected.
    pub(super) fn key_upkeep_timeout(&mut self, now: Duration) {
        if self.upkeep.rotate_at.is_some_and(|t| t <= now) {
            self.upkeep.rotate_at = None;
            self.rotate(now);
        }
    }

    /// Asks the driver for `n` one-time pre-keys to upload (facts §5.5), once at a time.
    fn request_pre_keys(&mut self, n: usize) {
        if !self.upkeep.requested {
            self.upkeep.requested = true;
            self.events.push_back(Event::NeedPreKeys(n));
        }
    }

    /// Uploads the bundle: identity, signed pre-key and these one-time keys.
    fn upload(&mut self, now: Duration, keys: &[store::OneTimePreKey]) {
        let iq = Upload {
            keys: &self.keys,
            pending: keys,
        }
        .iq();
        let deadline = now + self.config.iq_timeout;
        self.send_internal(now, iq, Internal::PreKeyUpload, deadline);
    }

    /// The digest, once per login, after the count's upload (if any) is done.
    fn check_digest(&mut self, now: Duration) {
        if !self.is_logged_in() {
            return;
        }
        if std::mem::replace(&mut self.upkeep.digest_asked, true) {
            return self.schedule_rotation(now);
        }
        let deadline = now + self.config.iq_timeout;
        self.send_internal(now, Digest.iq(), Internal::Digest, deadline);
    }

    /// Arms the rotation timer from the schedule (or rotates now).
    fn schedule_rotation(&mut self, now: Duration) {
        if self.upkeep.rotate_at.is_some() || self.upkeep.rotating.is_some() {
            return;
        }
        let unix = self.unix(now);
        let interval = self.config.signed_pre_key_rotation;
        match rotation(self.upkeep.rotated_at, unix, interval) {
            Rotation::Baseline => {
                self.upkeep.rotated_at = Some(unix);
                self.events
                    .push_back(Event::SignedPreKeyRotated { at: unix });
                self.upkeep.rotate_at = Some(now + interval);
            }
            Rotation::In(secs) => self.upkeep.rotate_at = Some(now + Duration::from_secs(secs)),
            Rotation::Due => self.rotate(now),
        }
    }

    /// Makes the next signed pre-key and asks the driver to store it.
    fn rotate(&mut self, _now: Duration) {
        if !self.is_logged_in() || self.upkeep.rotating.is_some() {
            return;
        }
        let id = self.keys.signed_pre_key.id.next();
        let key = keys::signed_pre_key(&mut self.rng, &self.keys.identity, id);
        self.upkeep.rotating = Some(key.clone());
        self.events
            .push_back(Event::SaveSignedPreKey(Box::new(key)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 60 * 60;

    #[test]
    fn rotation_counts_from_the_last_one_and_starts_a_missing_schedule() {
        let interval = Duration::from_secs(27 * DAY);
        assert_eq!(rotation(None, 1_000, interval), Rotation::Baseline);
        assert_eq!(
            rotation(Some(1_000), 1_000, interval),
            Rotation::In(27 * DAY)
        );
        assert_eq!(rotation(Some(0), 26 * DAY, interval), Rotation::In(DAY));
        assert_eq!(rotation(Some(0), 27 * DAY, interval), Rotation::Due);
        assert_eq!(rotation(Some(0), 400 * DAY, interval), Rotation::Due);
        // A clock that went back counts as no time passed.
        assert_eq!(
            rotation(Some(5_000), 1_000, interval),
            Rotation::In(27 * DAY)
        );
    }
}
