//! The broker's side of its local endpoint (see `keybridge_endpoint`): a Unix socket in a private
//! folder, or a named pipe on Windows, for the same user only.
//!
//! Each connection starts with a [`Hello`]. Bridge connections authenticate and then send
//! calls, which run concurrently and can be cancelled; admin connections run commands and may
//! follow the audit log. A malformed, oversized or unknown frame gets an error reply and closes
//! that connection only. A peer that says nothing is dropped after [`HELLO_TIMEOUT`], so a
//! flood of idle connections cannot hold the broker.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keybridge_broker_proto::{
    AdminCommand, BrokerEvent, ErrorCode, ErrorInfo, FrameBudget, FrameError, Hello, PROTOCOL_VERSION, Request,
    RequestBody, Response, read_frame_within, write_frame,
};
use keybridge_endpoint::{EndpointError, PeerUser, Stream};
use serde_json::json;
use tokio::io::{BufReader, ReadHalf};
use tokio::sync::mpsc;

use crate::audit::AuditRecord;
use crate::peer::Peer;
use crate::primitives::lock;
use crate::{Broker, BrokerError, OpenError, own_uid};

/// Calls one connection may have in flight at once.
pub const MAX_CALLS_IN_FLIGHT: usize = 64;

/// What all connections together may hold in large requests still arriving: eight of the
/// largest frames at once.
pub const LARGE_FRAMES_BUDGET: usize = 64 * 1024 * 1024;

/// How long a new connection has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

pub use keybridge_endpoint::Listener;

/// Listen at `address` (a socket path, or a pipe name on Windows), refusing if another broker
/// of this user already does.
pub fn bind(address: &Path) -> Result<Listener, OpenError> {
    Listener::bind(address).map_err(|e| match e {
        EndpointError::AlreadyRunning { address } => OpenError::AlreadyRunning(address),
        other => OpenError::Endpoint(other),
    })
}

/// Accept connections until `shutdown` completes.
pub async fn serve(mut listener: Listener, broker: Arc<Broker>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let budget = FrameBudget::new(LARGE_FRAMES_BUDGET);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (broker, budget) = (broker.clone(), budget.clone());
                    tokio::spawn(async move { connection(stream, peer, broker, budget).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// An answer on its way to the peer, holding the call's place until it is written.
struct Outgoing {
    response: Response,
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What the connection's writer sends, in order.
#[derive(Clone)]
struct Outbox(mpsc::UnboundedSender<Outgoing>);

impl Outbox {
    fn send(&self, response: Response) -> Result<(), ()> {
        self.0.send(Outgoing { response, _place: None }).map_err(|_| ())
    }

    /// Send a call's answer; its place among the calls in flight is freed once the answer is
    /// written, so a peer that stops reading cannot make answers pile up.
    fn send_holding(&self, response: Response, place: tokio::sync::OwnedSemaphorePermit) -> Result<(), ()> {
        self.0.send(Outgoing { response, _place: Some(place) }).map_err(|_| ())
    }

    async fn closed(&self) {
        self.0.closed().await
    }
}

fn error(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error { id, error: ErrorInfo { code, message: message.into() } }
}

fn too_large(id: Option<u64>, bytes: usize) -> Response {
    error(
        id,
        ErrorCode::TooLarge,
        format!(
            "the answer is {:.1} MB, more than the {} MB Keybridge passes in one piece; it ran, but nothing of it was sent: ask for less (one file, a shorter range, fewer items)",
            bytes as f64 / 1_048_576.0,
            keybridge_broker_proto::MAX_FRAME_BYTES / 1_048_576
        ),
    )
}

async fn connection(stream: Stream, peer: PeerUser, broker: Arc<Broker>, budget: FrameBudget) {
    let (reader, mut writer) = tokio::io::split(stream);
    // Buffered: a frame's length and body then arrive in one read, not two.
    let mut reader = tokio::io::BufReader::new(reader);
    let (outbox, mut queue) = mpsc::unbounded_channel::<Outgoing>();
    let outbox = Outbox(outbox);
    // The one writer of this connection. An answer too large for a frame is replaced by an
    // error saying so (nothing of it was written); only a broken connection ends the writer.
    let writer_task = tokio::spawn(async move {
        while let Some(Outgoing { response, _place }) = queue.recv().await {
            match write_frame(&mut writer, &response).await {
                Ok(()) => {}
                Err(FrameError::TooLarge(bytes)) => {
                    let refusal = too_large(response.id(), bytes);
                    if write_frame(&mut writer, &refusal).await.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });

    let peer = match peer {
        PeerUser::Same { pid } => Peer::inspect(own_uid(), pid.and_then(|pid| i32::try_from(pid).ok())),
        PeerUser::Other { user } => {
            tracing::warn!(%user, "refused a connection from another user");
            let _ = outbox.send(error(None, ErrorCode::NotAuthenticated, "this broker serves its own user only"));
            drop(outbox);
            let _ = writer_task.await;
            return;
        }
        PeerUser::Unknown { reason } => {
            let _ = outbox.send(error(None, ErrorCode::Internal, format!("cannot identify the peer: {reason}")));
            drop(outbox);
            let _ = writer_task.await;
            return;
        }
    };

    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_frame_within::<Hello, _>(&mut reader, &budget)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(FrameError::Closed)) | Err(_) => return,
        Ok(Err(e)) => {
            let _ = outbox.send(error(None, ErrorCode::BadFrame, format!("{e}; the first frame must be a hello")));
            drop(outbox);
            let _ = writer_task.await;
            return;
        }
    };
    if hello.version() != PROTOCOL_VERSION {
        let _ = outbox.send(error(
            None,
            ErrorCode::UnsupportedVersion,
            format!(
                "protocol version {} is not supported by this broker (it speaks {PROTOCOL_VERSION}); update Keybridge so both parts match",
                hello.version()
            ),
        ));
    } else {
        match hello {
            Hello::Bridge { client_id, client_key, .. } => {
                match broker.authenticate(&client_id, client_key.as_ref(), &peer).await {
                    Ok(session) => {
                        let session_id = session.session_id.clone();
                        let _ = outbox.send(Response::Welcome { session });
                        let notices = tokio::spawn(forward_client_changes(broker.clone(), outbox.clone(), client_id));
                        requests(&mut reader, &outbox, &broker, Some(session_id.clone()), &budget).await;
                        notices.abort();
                        broker.connection_closed(&session_id);
                    }
                    Err(e) => {
                        let _ = outbox.send(Response::Error { id: None, error: e.info() });
                    }
                }
            }
            Hello::Admin { .. } => {
                let _ = outbox.send(Response::AdminWelcome { broker_version: broker.version().into() });
                requests(&mut reader, &outbox, &broker, None, &budget).await;
            }
        }
    }
    drop(outbox);
    let _ = writer_task.await;
}

/// Serve requests until the peer leaves or sends a bad frame. `session` is set for bridges.
async fn requests(
    reader: &mut BufReader<ReadHalf<Stream>>,
    outbox: &Outbox,
    broker: &Arc<Broker>,
    session: Option<String>,
    budget: &FrameBudget,
) {
    let running: Arc<Mutex<HashMap<u64, tokio::task::AbortHandle>>> = Arc::default();
    // A call holds a place from its request until its answer is written.
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_CALLS_IN_FLIGHT));
    loop {
        let request = match read_frame_within::<Request, _>(reader, budget).await {
            Ok(request) => request,
            Err(FrameError::Closed) => break,
            Err(e) => {
                let _ = outbox.send(error(None, ErrorCode::BadFrame, format!("{e}; closing this connection")));
                break;
            }
        };
        let id = request.id;
        match (request.body, &session) {
            (RequestBody::Cancel { target }, _) => {
                if let Some(task) = lock(&running).remove(&target) {
                    task.abort();
                    let _ = outbox.send(error(Some(target), ErrorCode::Cancelled, "cancelled by the client"));
                }
            }
            (RequestBody::Refresh, Some(session_id)) => {
                let _ = outbox.send(match broker.refresh(session_id) {
                    Ok(session) => Response::Token { id, session },
                    Err(e) => Response::Error { id: Some(id), error: e.info() },
                });
            }
            (RequestBody::ListTools { token }, Some(session_id)) => {
                let _ = outbox.send(match broker.list_tools(Some(session_id), &token) {
                    Ok(tools) => Response::Tools { id, tools },
                    Err(e) => Response::Error { id: Some(id), error: e.info() },
                });
            }
            (RequestBody::Call { token, tool, arguments }, Some(session_id)) => {
                if lock(&running).contains_key(&id) {
                    let _ =
                        outbox.send(error(Some(id), ErrorCode::Invalid, format!("request id {id} is already in use")));
                    continue;
                }
                let Ok(place) = places.clone().try_acquire_owned() else {
                    let message = format!(
                        "more than {MAX_CALLS_IN_FLIGHT} calls in flight on one connection (answers not yet read count too); wait for some to finish"
                    );
                    let _ = outbox.send(error(Some(id), ErrorCode::Invalid, message));
                    continue;
                };
                let (broker, outbox_for_call, running_for_call) = (broker.clone(), outbox.clone(), running.clone());
                let session_id = session_id.clone();
                // Held until the task is registered: a call that ends at once must not try to
                // unregister before it is registered, which would leave its entry behind.
                let mut registered = lock(&running);
                let task = tokio::spawn(async move {
                    let waiting = outbox_for_call.clone();
                    let result = broker
                        .call(Some(&session_id), &token, &tool, arguments, |pending| {
                            let seconds_left = pending.expires.saturating_sub(pending.created);
                            let _ =
                                waiting.send(Response::Waiting { id, summary: pending.summary.clone(), seconds_left });
                        })
                        .await;
                    lock(&running_for_call).remove(&id);
                    let answer = match result {
                        Ok(result) => Response::Result { id, result },
                        Err(e) => Response::Error { id: Some(id), error: e.info() },
                    };
                    let _ = outbox_for_call.send_holding(answer, place);
                });
                registered.insert(id, task.abort_handle());
            }
            (RequestBody::Admin(AdminCommand::AuditTail { last, follow: true }), None) => {
                follow_audit(broker, outbox, id, last).await;
                break;
            }
            (RequestBody::Admin(AdminCommand::AuditTail { last, follow: false }), None) => {
                send_tail(broker, outbox, id, last).await;
            }
            (RequestBody::Admin(command), None) => {
                let _ = outbox.send(match broker.admin(command).await {
                    Ok(reply) => Response::Admin { id, result: reply.to_wire() },
                    Err(e) => Response::Error { id: Some(id), error: e.info() },
                });
            }
            (RequestBody::Admin(_), Some(_)) => {
                let _ = outbox.send(error(
                    Some(id),
                    ErrorCode::Invalid,
                    "a bridge connection cannot administer the broker",
                ));
            }
            (_, None) => {
                let _ = outbox.send(error(Some(id), ErrorCode::NotAuthenticated, "say hello as a bridge first"));
            }
        }
    }
    for (_, task) in lock(&running).drain() {
        task.abort();
    }
}

/// Tell a bridge when its client's scopes or policy change, so it can re-list its tools.
async fn forward_client_changes(broker: Arc<Broker>, outbox: Outbox, client_id: String) {
    let mut events = broker.subscribe_events();
    loop {
        match events.recv().await {
            Ok(BrokerEvent::ClientChanged { client }) if client == client_id => {
                if outbox.send(Response::Event { event: json!(BrokerEvent::ClientChanged { client }) }).is_err() {
                    return;
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

/// At most this many records, and [`TAIL_PAGE_BYTES`] of them, go in an `audit tail`
/// answer's final frame; older ones go before it as `audit` events, one a frame, so no tail is
/// ever one giant frame.
pub const TAIL_PAGE: usize = 500;
pub const TAIL_PAGE_BYTES: usize = 1024 * 1024;

/// The last `last` records: the older ones as `audit` events, oldest first, then the answer
/// with the newest page. A short tail is one answer, as any admin command's. The log is read
/// twice a line at a time (to count, then to send) and at most [`TAIL_IN_FLIGHT`] events wait
/// to be written, so a tail of any length holds little memory.
async fn send_tail(broker: &Arc<Broker>, outbox: &Outbox, id: u64, last: usize) -> bool {
    let log = broker.audit_log();
    let records = log.records().map(|records| records.count()).and_then(|total| Ok((total, log.records()?)));
    let (total, records) = match records {
        Ok(found) => found,
        Err(e) => {
            let _ = outbox.send(Response::Error { id: Some(id), error: BrokerError::from(e).info() });
            return false;
        }
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(TAIL_IN_FLIGHT));
    let send_older = |record: AuditRecord| {
        let in_flight = in_flight.clone();
        async move {
            let Ok(place) = in_flight.acquire_owned().await else { return false };
            outbox.send_holding(Response::Event { event: json!({"type": "audit", "record": record}) }, place).is_ok()
        }
    };
    // The newest page: at most TAIL_PAGE records and TAIL_PAGE_BYTES, at least one.
    let mut page: std::collections::VecDeque<(AuditRecord, usize)> = std::collections::VecDeque::new();
    let mut page_bytes = 0;
    for record in records.skip(total.saturating_sub(last)) {
        let bytes = serde_json::to_string(&record).map_or(0, |text| text.len());
        page.push_back((record, bytes));
        page_bytes += bytes;
        while page.len() > TAIL_PAGE || (page_bytes > TAIL_PAGE_BYTES && page.len() > 1) {
            let Some((older, bytes)) = page.pop_front() else { break };
            page_bytes -= bytes;
            if !send_older(older).await {
                return false;
            }
        }
    }
    let newest: Vec<AuditRecord> = page.into_iter().map(|(record, _)| record).collect();
    outbox.send(Response::Admin { id, result: json!(newest) }).is_ok()
}

/// How many older records of a long tail may wait to be written at once.
const TAIL_IN_FLIGHT: usize = 64;

/// Send the last records, then every new record and approval change until the peer leaves.
async fn follow_audit(broker: &Arc<Broker>, outbox: &Outbox, id: u64, last: usize) {
    let mut records = broker.audit_log().subscribe();
    let mut events = broker.subscribe_events();
    if !send_tail(broker, outbox, id, last).await {
        return;
    }
    loop {
        let event = tokio::select! {
            record = records.recv() => match record {
                Ok(record) => json!({"type": "audit", "record": *record}),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => json!(BrokerEvent::Lagged { missed: n }),
                Err(_) => break,
            },
            event = events.recv() => match event {
                Ok(event) => json!(event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => json!(BrokerEvent::Lagged { missed: n }),
                Err(_) => break,
            },
            _ = outbox.closed() => break,
        };
        if outbox.send(Response::Event { event }).is_err() {
            break;
        }
    }
}
