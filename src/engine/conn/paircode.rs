//! Pairing by phone-number code on a registration connection (facts §7): the hello with our
//! wrapped ephemeral once `pair-device` came, the code shown once WhatsApp accepted it, the
//! finish answering each `primary_hello` while the code is valid (a mistyped code on the phone
//! leads to another hello), and the ADV secret the exchange derives for the `pair-success`
//! check. Requesting again replaces the code (refresh); an expired one is forgotten.

use std::time::Duration;

use rand::{Rng, RngCore};
use zeroize::Zeroizing;

use super::{Connection, Internal};
use crate::binary::Node;
use crate::engine::event::Event;
use crate::engine::iq::IqError;
use crate::engine::keys;
use crate::engine::paircode::{self, CodeKey, CodeKeyJob, FinishRandom, PairCode};
use crate::noise::SecretKey;
use crate::ops::IqSpec;
use crate::ops::paircode::{CompanionFinish, CompanionHello, PrimaryHello, primary_hello};
use crate::types::UserJid;

/// `companion_platform_display`: a browser and OS the server knows (facts §7.2).
const PLATFORM_DISPLAY: &str = "Chrome (Linux)";

/// One code's state on the connection.
pub(super) struct CodePairing {
    phone: UserJid,
    /// The request sent, once the code's key is derived; its spec reads the reply.
    hello: Option<CompanionHello>,
    code: PairCode,
    ephemeral: SecretKey,
    /// Salt and IV our wrapped ephemeral is made with.
    salt: [u8; 32],
    iv: [u8; 16],
    /// A phone's hello waiting for the key its salt derives.
    primary: Option<PrimaryHello>,
    /// The ref WhatsApp gave our hello; `None` until it answered.
    reference: Option<String>,
    /// When the code stops being accepted (monotonic); set when WhatsApp accepted the hello.
    expires: Option<Duration>,
    /// Derived by the last finish: what `pair-success` is checked with.
    pub(super) adv_secret: Option<Zeroizing<[u8; 32]>>,
}

impl CodePairing {
    /// Whether the code still counts at `now`.
    fn valid(&self, now: Duration) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

impl Connection {
    /// Asks for a pairing code for `phone` (validated by `ops::paircode::phone`). Before
    /// `pair-device` arrives the request waits for it; a later request replaces the code.
    /// The code comes as [`Event::PairCode`] once WhatsApp accepted it, or
    /// [`Event::PairCodeFailed`].
    pub fn request_pair_code(&mut self, now: Duration, phone: UserJid) {
        self.now = self.now.max(now);
        if self.is_closed() || self.paired.is_some() {
            return;
        }
        if self.qr.is_none() {
            self.code_wanted = Some(phone);
            return;
        }
        self.send_companion_hello(now, phone);
    }

    /// `pair-device` came: a code asked for before it can be requested now.
    pub(super) fn after_pair_device(&mut self, now: Duration) {
        if let Some(phone) = self.code_wanted.take() {
            self.send_companion_hello(now, phone);
        }
    }

    fn send_companion_hello(&mut self, now: Duration, phone: UserJid) {
        let mut random = [0u8; 5];
        self.rng.fill_bytes(&mut random);
        let code = PairCode::from_random(random);
        let ephemeral = SecretKey::generate(&mut self.rng);
        let (salt, iv): ([u8; 32], [u8; 16]) = (self.rng.r#gen(), self.rng.r#gen());
        let job = CodeKeyJob::new(&code, salt);
        self.code = Some(Box::new(CodePairing {
            phone,
            hello: None,
            code,
            ephemeral,
            salt,
            iv,
            primary: None,
            reference: None,
            expires: None,
            adv_secret: None,
        }));
        // The hello goes out once the driver derived the key (PBKDF2, off the async workers).
        self.now = self.now.max(now);
        self.events.push_back(Event::DeriveCodeKey(Box::new(job)));
    }

    /// The driver ran an [`Event::DeriveCodeKey`]: send the hello it was for, or answer the
    /// phone's hello it was for. A key for a code since replaced is dropped.
    pub fn code_key_derived(&mut self, now: Duration, key: CodeKey) {
        self.now = self.now.max(now);
        if self.is_closed() {
            return;
        }
        let Some(code) = self.code.as_mut() else {
            return;
        };
        if code.hello.is_none() && key.salt() == &code.salt {
            let wrapped = paircode::wrap_with(&key, code.iv, &code.ephemeral.public_key());
            let hello = CompanionHello {
                phone: code.phone.clone(),
                wrapped_ephemeral: wrapped.to_vec(),
                noise_public: *self.keys.noise.public.as_bytes(),
                platform_id: crate::engine::pair::CLIENT_TYPE,
                platform_display: PLATFORM_DISPLAY.to_owned(),
            };
            let iq = hello.iq();
            code.hello = Some(hello);
            let deadline = now + self.config.iq_timeout;
            return self.send_internal(now, iq, Internal::PairCodeHello, deadline);
        }
        let salt = *key.salt();
        let waiting = code
            .primary
            .take_if(|p| paircode::wrapped_salt(&p.wrapped_ephemeral) == Ok(salt));
        if let Some(hello) = waiting {
            self.finish_code(now, &key, hello);
        }
    }

    /// The reply to our hello: the ref, and with it the code to show.
    pub(super) fn hello_answered(&mut self, now: Duration, reply: Result<Node, IqError>) {
        let ttl = self.config.pair_code_ttl;
        let unix = self.unix(now);
        let Some(code) = self.code.as_mut().filter(|c| c.reference.is_none()) else {
            return; // replaced by a newer request meanwhile
        };
        let reference = reply.and_then(|node| {
            code.hello
                .as_ref()
                .and_then(|h| h.parse(&node).ok())
                .ok_or_else(|| IqError::Rejected {
                    code: 500,
                    text: "no link_code_pairing_ref".to_owned(),
                })
        });
        match reference {
            Ok(reference) => {
                code.reference = Some(reference);
                code.expires = Some(now + ttl);
                let shown = code.code.display();
                self.events.push_back(Event::PairCode {
                    code: shown,
                    expires_at: unix + ttl.as_secs(),
                });
            }
            Err(e) => {
                self.code = None;
                self.events.push_back(Event::PairCodeFailed(e));
            }
        }
    }

    /// The code's expiry, for [`Connection::poll_timeout`].
    pub(super) fn code_deadline(&self) -> Option<Duration> {
        self.code.as_ref().and_then(|c| c.expires)
    }

    /// Forgets an expired code: a `primary_hello` for it is ignored from now on.
    pub(super) fn expire_code(&mut self, now: Duration) {
        if self.code.as_ref().is_some_and(|c| !c.valid(now)) {
            tracing::info!(device = self.device.get(), "pairing code expired");
            self.code = None;
        }
    }

    /// Whether a valid code keeps a pairing connection open after its QR refs ran out, and
    /// until when.
    pub(super) fn code_holds_until(&self, now: Duration) -> Option<Duration> {
        self.code
            .as_ref()
            .filter(|c| c.valid(now))
            .map(|c| c.expires.unwrap_or(now + self.config.pair_code_ttl))
    }

    /// A `link_code_companion_reg` notification: the phone's hello, answered with our finish.
    pub(super) fn handle_link_code(&mut self, now: Duration, node: &Node) {
        let hello = match primary_hello(node) {
            None => return,
            Some(Ok(hello)) => hello,
            Some(Err(e)) => {
                tracing::warn!(device = self.device.get(), error = %e, "unreadable primary_hello");
                return;
            }
        };
        let Some(code) = self.code.as_mut() else {
            tracing::info!(
                device = self.device.get(),
                "primary_hello without a pairing code"
            );
            return;
        };
        if !code.valid(now) || code.reference.as_deref() != Some(hello.reference.as_str()) {
            tracing::info!(device = self.device.get(), "primary_hello for another code");
            return;
        }
        match paircode::wrapped_salt(&hello.wrapped_ephemeral) {
            Ok(salt) => {
                let job = CodeKeyJob::new(&code.code, salt);
                code.primary = Some(hello);
                self.events.push_back(Event::DeriveCodeKey(Box::new(job)));
            }
            Err(e) => {
                tracing::warn!(device = self.device.get(), error = %e, "primary_hello refused")
            }
        }
    }

    /// Our finish for the phone's hello, with the key its salt derived.
    fn finish_code(&mut self, now: Duration, key: &CodeKey, hello: PrimaryHello) {
        let Some(code) = self.code.as_mut() else {
            return;
        };
        let mut random = FinishRandom {
            bundle_salt: [0; 32],
            bundle_nonce: [0; 12],
            adv_random: [0; 32],
        };
        self.rng.fill_bytes(&mut random.bundle_salt);
        self.rng.fill_bytes(&mut random.bundle_nonce);
        self.rng.fill_bytes(&mut random.adv_random);
        let identity = keys::to_noise(&self.keys.identity);
        let primary = crate::noise::PublicKey::from_bytes(hello.primary_identity);
        let finished = paircode::finish(
            key,
            &code.ephemeral,
            &identity,
            &hello.wrapped_ephemeral,
            &primary,
            &random,
        );
        let done = match finished {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(device = self.device.get(), error = %e, "primary_hello refused");
                return;
            }
        };
        code.adv_secret = Some(done.adv_secret);
        let finish = CompanionFinish {
            phone: code.phone.clone(),
            wrapped_bundle: done.wrapped_bundle,
            identity_public: *identity.public().as_bytes(),
            reference: hello.reference,
        };
        let deadline = now + self.config.iq_timeout;
        self.send_internal(now, finish.iq(), Internal::PairCodeFinish, deadline);
    }
}
