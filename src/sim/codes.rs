//! Pairing by phone-number code across the connection and the control API: a companion's hello
//! registers its code by phone number; the phone types a code (`POST /control/paircode`), which
//! sends its hello to that companion and waits for the outcome; the companion's finish is
//! checked and, when the code was right, answered with `pair-success` exactly as a QR scan is.

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::model::{AddRule, PairedDevice};
use super::paircode::{self, CodeError, CompanionFinish, CompanionHello};
use super::pairing::{self, PairingError, PendingSign};
use super::shared::Shared;
use super::state::{CodeWait, Command, ConnId, Device, LinkCode, Phase};
use crate::binary::Node;

/// What the connection task does after a `companion_finish`.
pub(crate) enum FinishOutcome {
    /// A wrong code (or no phone waiting): the companion may be sent another hello.
    Wait,
    /// Send `pair-success`.
    PairSuccess(Box<PairSuccess>),
}

/// A `pair-success` to send; the answer is checked against `pending`, `draft` registered and
/// `reply` answered.
pub(crate) struct PairSuccess {
    pub node: Node,
    pub pending: PendingSign,
    pub draft: Box<Device>,
    pub reply: oneshot::Sender<Result<PairedDevice, PairingError>>,
}

impl Shared {
    /// A registering connection's checked hello: remembers its code for the phone number and
    /// returns the ref and when the code expires.
    pub fn register_code(
        &self,
        id: ConnId,
        hello: CompanionHello,
    ) -> Result<(String, Instant), &'static str> {
        let mut st = self.lock();
        let conn = st.conns.get(&id).ok_or("connection")?;
        if !matches!(conn.phase, Phase::Registering { .. }) {
            return Err("connection");
        }
        if conn.noise_key != hello.noise_key {
            return Err("companion_server_auth_key_pub");
        }
        let reference = paircode::new_ref(&mut st.rng);
        let expires = Instant::now() + self.timing.pair_code;
        st.codes.insert(
            hello.phone,
            LinkCode {
                conn: id,
                reference: reference.clone(),
                wrapped: hello.wrapped,
                expires,
            },
        );
        Ok((reference, expires))
    }

    /// The phone `phone` types `typed`: its hello goes to the companion that asked for a code
    /// for this number; returns once the companion's `pair-device-sign` verified, or with why
    /// not (a wrong code leaves the companion's code valid for another try).
    pub async fn type_code(&self, phone: &str, typed: &str) -> Result<PairedDevice, PairingError> {
        pairing::check_phone(phone)?;
        let code = paircode::parse_code(typed).map_err(|_| PairingError::BadCode)?;
        let (tx, node, wait, rx) = {
            let mut st = self.lock();
            if st.behaviour(phone).on_add == AddRule::NotOnWhatsApp {
                return Err(PairingError::PhoneNotOnWhatsApp(phone.to_owned()));
            }
            let pending = st
                .codes
                .get(phone)
                .ok_or_else(|| PairingError::NoPairingCode(phone.to_owned()))?;
            if Instant::now() >= pending.expires {
                return Err(PairingError::CodeExpired);
            }
            let (conn, reference, wrapped) = (
                pending.conn,
                pending.reference.clone(),
                pending.wrapped.clone(),
            );
            let tx: mpsc::Sender<Command> = st
                .conns
                .get(&conn)
                .map(|c| c.tx.clone())
                .ok_or_else(|| PairingError::NoPairingCode(phone.to_owned()))?;
            let account = st.account(phone).identity.clone();
            let (sealed, hello) = paircode::phone_hello(&code, &wrapped, &mut st.rng)
                .map_err(|_| PairingError::BadCode)?;
            let id = st.next_iq_id();
            let node = paircode::primary_hello(&id, &reference, sealed, account.public());
            let (reply, rx) = oneshot::channel();
            let wait = CodeWait {
                phone: phone.to_owned(),
                reference,
                hello,
                account,
                reply,
            };
            (tx, node, wait, rx)
        };
        // The account may be new: keep it.
        let command = Command::CodeHello {
            node,
            wait: Box::new(wait),
        };
        self.await_pairing(&tx, command, rx).await
    }

    /// A companion's finish, checked against what the phone kept. A right code spends the
    /// connection's code and refs and yields the `pair-success` to send.
    pub fn code_finished(
        &self,
        id: ConnId,
        wait: Option<Box<CodeWait>>,
        finish: Result<CompanionFinish, &'static str>,
    ) -> FinishOutcome {
        let Some(wait) = wait else {
            return FinishOutcome::Wait; // no phone typed a code yet
        };
        let checked = finish.map_err(PairingError::BadFinish).and_then(|f| {
            if f.reference != wait.reference {
                return Err(PairingError::BadFinish("link_code_pairing_ref"));
            }
            let adv = paircode::open_finish(&wait.hello, &wait.account, &f.bundle, &f.identity)
                .map_err(|e| match e {
                    CodeError::WrongCode => PairingError::WrongCode,
                    CodeError::IdentityMismatch => PairingError::IdentityKeyMismatch,
                    _ => PairingError::BadFinish("link_code_pairing_wrapped_key_bundle"),
                })?;
            Ok((f, adv))
        });
        let (finish, adv) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                tracing::info!(error = %e, "pairing by code refused");
                let _ = wait.reply.send(Err(e));
                return FinishOutcome::Wait;
            }
        };
        let mut st = self.lock();
        let Some(conn) = st.conns.get(&id) else {
            let _ = wait.reply.send(Err(PairingError::ConnectionClosed));
            return FinishOutcome::Wait;
        };
        let Phase::Registering { registration, refs } = &conn.phase else {
            let _ = wait.reply.send(Err(PairingError::ConnectionClosed));
            return FinishOutcome::Wait;
        };
        if registration.identity != finish.identity {
            let _ = wait.reply.send(Err(PairingError::IdentityKeyMismatch));
            return FinishOutcome::Wait;
        }
        let (noise_key, registration) = (conn.noise_key, registration.clone());
        let spent: Vec<String> = refs.iter().map(|(r, _)| r.clone()).collect();
        for r in &spent {
            st.refs.remove(r);
        }
        st.codes.remove(&wait.phone);
        // The phone completes as after a scan, with the ADV secret the code exchange derived.
        let qr = pairing::Qr {
            pairing_ref: wait.reference.clone(),
            noise_key,
            identity_key: registration.identity,
            adv_secret: adv,
            client_type: None,
        };
        let (node, pending, draft) =
            self.offer(&mut st, &wait.phone, &qr, noise_key, &registration);
        FinishOutcome::PairSuccess(Box::new(PairSuccess {
            node,
            pending,
            draft: Box::new(draft),
            reply: wait.reply,
        }))
    }
}
