//! Approvers of a team service, over HTTP: the routes a replica serves to the people of the
//! identity provider's approver group (their client is `keybridge-team-client`).
//!
//! `GET {endpoint}/approvals` lists every question any replica waits on; `POST
//! {endpoint}/approvals/{id}` with `{"decision": ...}` answers one, through whichever replica
//! the request reaches. The caller is the token's subject: nobody answers a question their own
//! call raised.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use keybridge_broker::{Broker, BrokerError};
use keybridge_broker_proto::{AdminCommand, AdminReply, ErrorCode};
use keybridge_team_client::Answer;
use serde_json::json;

use crate::resource::Principal;

/// The approvers' routes under `base` (the MCP endpoint's path, `""` at the root). They expect
/// the [`Principal`] the resource server's group guard puts on each request.
pub fn routes(broker: Arc<Broker>, base: &str) -> Router {
    Router::new()
        .route(&format!("{base}/approvals"), get(list))
        .route(&format!("{base}/approvals/{{id}}"), post(answer))
        .with_state(broker)
}

async fn list(State(broker): State<Arc<Broker>>) -> Response {
    match broker.admin(AdminCommand::ApprovalsList).await {
        Ok(AdminReply::Approvals(open)) => Json(open).into_response(),
        Ok(_) => refused(&BrokerError::Internal("the broker answered with something else".into())),
        Err(e) => refused(&e),
    }
}

async fn answer(
    State(broker): State<Arc<Broker>>,
    Extension(approver): Extension<Principal>,
    Path(id): Path<String>,
    Json(answer): Json<Answer>,
) -> Response {
    match broker.answer_question(&id, answer.decision, Some(&approver.subject)) {
        Ok(AdminReply::ApprovalDecided(decided)) => Json(decided).into_response(),
        Ok(_) => refused(&BrokerError::Internal("the broker answered with something else".into())),
        Err(e) => refused(&e),
    }
}

fn refused(error: &BrokerError) -> Response {
    let status = match error {
        BrokerError::OwnRequest { .. } => StatusCode::FORBIDDEN,
        _ => match error.code() {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
    };
    (status, Json(json!({"error": error.to_string()}))).into_response()
}
