//! A sequential admin connection to the running broker.

use std::path::Path;

use anyhow::{Context, Result, bail};
use keybridge_broker_proto::{
    AdminCommand, AdminReply, Hello, PROTOCOL_VERSION, Request, RequestBody, Response, read_frame, write_frame,
};
use keybridge_endpoint::Stream;

pub struct Admin {
    stream: Stream,
    next_id: u64,
}

impl Admin {
    pub async fn connect(socket: &Path) -> Result<Self> {
        // Refuses an endpoint another user serves before a byte (an account's token, say) is sent.
        let mut stream = keybridge_endpoint::connect(socket).await?;
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

    /// Run one command and return its reply, or the broker's error message.
    pub async fn run(&mut self, command: AdminCommand) -> Result<AdminReply> {
        let sent = command.clone();
        self.send(command).await?;
        match self.next().await? {
            Response::Admin { result, .. } => AdminReply::from_wire(&sent, result)
                .context("the broker's answer is not what this version of keybridge reads; update one of the two"),
            Response::Error { error, .. } => bail!("{}", error.message),
            other => bail!("unexpected answer from the broker: {other:?}"),
        }
    }
}
