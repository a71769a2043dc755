//! [`Client`]: the cheap-clone handle to one device's task.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use wuts_store::DeviceId;

use super::api::{DeviceEvent, DeviceStatus, Error, PairCodeInfo};
use super::driver::{Command, Shared};
use crate::binary::Node;
use crate::engine::lifecycle;
use crate::ops::groups::{CreateGroup, GroupAnswer, GroupCall, GroupInfo};
use crate::ops::{Iq, IqSpec};
use crate::types::UserJid;

/// A handle to one device. Cloning is cheap; every clone talks to the same task.
#[derive(Clone)]
pub struct Client {
    pub(super) id: DeviceId,
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) shared: Arc<Shared>,
}

impl Client {
    /// The device's id in the store.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// State, JID, current QR code, and why it is where it is.
    pub fn status(&self) -> DeviceStatus {
        self.shared.snapshot()
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.shared.events.subscribe()
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn command(&self, cmd: lifecycle::Command) -> Result<(), Error> {
        self.call(|tx| Command::Lifecycle(cmd, tx)).await
    }

    /// Starts pairing (QR codes follow as events).
    pub async fn pair(&self) -> Result<(), Error> {
        self.command(lifecycle::Command::Pair).await
    }

    /// Asks for a pairing code for `phone` (see [`Devices::pair_code`](super::api::Devices::pair_code)).
    pub async fn pair_code(&self, phone: UserJid) -> Result<PairCodeInfo, Error> {
        self.call(|tx| Command::PairCode(phone, tx)).await
    }

    /// Connects a paired device now.
    pub async fn connect(&self) -> Result<(), Error> {
        self.command(lifecycle::Command::Connect).await
    }

    /// Drops the connection, keeps the credentials.
    pub async fn disconnect(&self) -> Result<(), Error> {
        self.command(lifecycle::Command::Disconnect).await
    }

    /// Logs out (telling WhatsApp when connected) and wipes the credentials; returns once they
    /// are gone. The device keeps its id and can pair again.
    pub async fn logout(&self) -> Result<(), Error> {
        self.command(lifecycle::Command::Logout).await
    }

    /// Sends a raw IQ and waits for its reply. Prefer [`Client::run`] with a spec.
    pub async fn iq(&self, iq: Iq) -> Result<Node, Error> {
        self.call(|tx| Command::Iq(iq, tx)).await
    }

    /// Runs one operation: its request out, its reply parsed.
    pub async fn run<S: IqSpec>(&self, spec: &S) -> Result<S::Output, Error> {
        let reply = self.iq(spec.iq()).await?;
        Ok(spec.parse(&reply)?)
    }

    /// Creates a group. The request is normalised and checked first: nothing invalid reaches
    /// WhatsApp.
    pub async fn create_group(&self, req: CreateGroup) -> Result<GroupInfo, Error> {
        let req = req.normalize().map_err(Error::Invalid)?;
        self.run(&req.spec(rand::random())).await
    }

    /// Runs one group request after create. Normalised and checked first: nothing invalid
    /// reaches WhatsApp.
    pub async fn group(&self, call: GroupCall) -> Result<GroupAnswer, Error> {
        let call = call.normalize().map_err(Error::Invalid)?;
        self.run(&call.spec(rand::random())).await
    }

    /// Closes the connection cleanly and stops the task. Returns once the task has ended and
    /// released the store, so the data directory can be reopened at once.
    pub async fn shutdown(&self) {
        self.shutdown_within(Duration::ZERO).await;
    }

    /// [`Client::shutdown`], after answering the requests already sent to WhatsApp (for at
    /// most `grace`): a planned move should not leave a caller without its outcome.
    pub async fn shutdown_within(&self, grace: Duration) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown(tx, grace))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        // The task acknowledges just before it returns; its command receiver (and with it its
        // store handle) is dropped when it has.
        self.commands.closed().await;
    }
}
