//! Clients of the broker's wire, as the CLI and `keybridge-mcp` speak it, over a Unix socket.

use std::path::Path;
use std::time::Duration;

use keybridge_broker_proto::{
    AdminCommand, Credential, ErrorInfo, Hello, PROTOCOL_VERSION, Request, RequestBody, Response, SessionInfo,
    read_frame, write_frame,
};
use serde_json::{Value, json};
use tokio::net::UnixStream;

/// One admin command over the socket at `socket` (usable from a task that owns no `Env`).
pub async fn admin_at(socket: &Path, command: AdminCommand) -> Result<Value, ErrorInfo> {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    write_frame(&mut stream, &Hello::Admin { version: PROTOCOL_VERSION }).await.unwrap();
    let _welcome: Response = read_frame(&mut stream).await.unwrap();
    write_frame(&mut stream, &Request { id: 1, body: RequestBody::Admin(command) }).await.unwrap();
    match read_frame(&mut stream).await.unwrap() {
        Response::Admin { result, .. } => Ok(result),
        Response::Error { error, .. } => Err(error),
        other => panic!("unexpected {other:?}"),
    }
}

/// Wait until an approval is pending at `socket` and return it.
pub async fn pending_at(socket: &Path) -> Value {
    for _ in 0..300 {
        let list = admin_at(socket, AdminCommand::ApprovalsList).await.unwrap();
        if let Some(first) = list.as_array().and_then(|l| l.first()) {
            return first.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no approval appeared");
}

/// A bridge connection, as `keybridge-mcp` makes it.
pub struct Bridge {
    pub stream: UnixStream,
    pub session: SessionInfo,
    next_id: u64,
    /// Approval summaries the broker sent while calls waited.
    pub waited: Vec<String>,
}

impl Bridge {
    pub async fn connect(socket: &Path, client_id: &str, key: Option<&str>) -> Result<Bridge, ErrorInfo> {
        let mut stream = UnixStream::connect(socket).await.unwrap();
        let hello = Hello::Bridge {
            version: PROTOCOL_VERSION,
            client_id: client_id.into(),
            client_key: key.map(|k| Credential::new(k.into())),
        };
        // A broker that refuses the peer answers and closes before reading: the write may fail,
        // the answer is still there to read.
        let _ = write_frame(&mut stream, &hello).await;
        match read_frame(&mut stream).await.unwrap() {
            Response::Welcome { session } => Ok(Bridge { stream, session, next_id: 1, waited: vec![] }),
            Response::Error { error, .. } => Err(error),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn token(&self) -> Credential {
        self.session.token.clone()
    }

    pub async fn request(&mut self, body: RequestBody) -> Result<Response, ErrorInfo> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(&mut self.stream, &Request { id, body }).await.unwrap();
        loop {
            match read_frame(&mut self.stream).await.unwrap() {
                Response::Waiting { summary, .. } => self.waited.push(summary),
                Response::Error { error, .. } => return Err(error),
                other => return Ok(other),
            }
        }
    }

    pub async fn call_with(&mut self, token: Credential, tool: &str, arguments: Value) -> Result<Value, ErrorInfo> {
        match self.request(RequestBody::Call { token, tool: tool.into(), arguments }).await? {
            Response::Result { result, .. } => Ok(result),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, ErrorInfo> {
        self.call_with(self.token(), tool, arguments).await
    }

    pub async fn tools(&mut self) -> Result<Vec<String>, ErrorInfo> {
        match self.request(RequestBody::ListTools { token: self.token() }).await? {
            Response::Tools { tools, .. } => Ok(tools.into_iter().map(|t| t.name).collect()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub fn project_args(id: i64) -> Value {
    json!({"projectId": id})
}
