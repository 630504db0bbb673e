//! A sequential admin connection to the running broker.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use keybridge_broker_proto::{
    AdminCommand, Hello, PROTOCOL_VERSION, Request, RequestBody, Response, read_frame, write_frame,
};
use serde_json::Value;
use tokio::net::UnixStream;

pub struct Admin {
    stream: UnixStream,
    next_id: u64,
}

impl Admin {
    pub async fn connect(socket: &Path) -> Result<Self> {
        let mut stream = UnixStream::connect(socket).await.map_err(|e| {
            anyhow!(
                "Keybridge is not running (no broker at {}: {e}); start it with `keybridge serve` or open the Keybridge app",
                socket.display()
            )
        })?;
        write_frame(&mut stream, &Hello::Admin { version: PROTOCOL_VERSION }).await?;
        match read_frame::<Response, _>(&mut stream).await.context("the broker closed the connection")? {
            Response::AdminWelcome { .. } => Ok(Self { stream, next_id: 1 }),
            Response::Error { error, .. } => bail!("{}", error.message),
            other => bail!("unexpected answer from the broker: {other:?}"),
        }
    }

    pub async fn send(&mut self, command: AdminCommand) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(&mut self.stream, &Request { id, body: RequestBody::Admin(command) }).await?;
        Ok(id)
    }

    pub async fn next(&mut self) -> Result<Response> {
        read_frame(&mut self.stream).await.context("the broker closed the connection")
    }

    /// Run one command and return its result, or the broker's error message.
    pub async fn run(&mut self, command: AdminCommand) -> Result<Value> {
        self.send(command).await?;
        match self.next().await? {
            Response::Admin { result, .. } => Ok(result),
            Response::Error { error, .. } => bail!("{}", error.message),
            other => bail!("unexpected answer from the broker: {other:?}"),
        }
    }
}
