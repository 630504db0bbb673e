//! The approvers' calls to a team service: its open questions, and an answer to one, as the
//! person signed in.

use keybridge_broker_proto::{ApprovalDecided, ApprovalDecision, ApprovalView};
use keybridge_secret::SecretString;
use serde::{Deserialize, Serialize};

use crate::sign_in::{Purpose, SignInPrompt, sign_in};
use crate::{TeamClientError, http_client, read_json};

/// The body of an answer, `POST {endpoint}/approvals/{id}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Answer {
    pub decision: ApprovalDecision,
}

/// A person signed in to a team service: its approvals, answered as them.
pub struct ApproverClient {
    http: reqwest::Client,
    endpoint: String,
    token: SecretString,
}

impl std::fmt::Debug for ApproverClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproverClient").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl ApproverClient {
    /// Sign a person in to the team service at `endpoint` as the identity provider's public
    /// client `client_id`; `prompt` is shown the page and the code to confirm.
    pub async fn sign_in(
        endpoint: &str,
        client_id: &str,
        prompt: impl FnOnce(&SignInPrompt),
    ) -> Result<ApproverClient, TeamClientError> {
        let signed_in = sign_in(endpoint, client_id, Purpose::Approve, prompt).await?;
        Ok(ApproverClient { http: http_client()?, endpoint: signed_in.resource, token: signed_in.access })
    }

    fn approvals_url(&self, id: Option<&str>) -> String {
        let base = self.endpoint.trim_end_matches('/');
        match id {
            Some(id) => format!("{base}/approvals/{}", encode_segment(id)),
            None => format!("{base}/approvals"),
        }
    }

    /// Every question any replica waits on, oldest first.
    pub async fn list(&self) -> Result<Vec<ApprovalView>, TeamClientError> {
        let url = self.approvals_url(None);
        let sent = self.http.get(&url).bearer_auth(self.token.expose()).send().await;
        let body = read_json("the team service", &url, sent).await?;
        serde_json::from_value(body)
            .map_err(|e| TeamClientError::Unexpected(format!("the list is not one of questions: {e}")))
    }

    /// Answer question `id` as the person signed in.
    pub async fn answer(&self, id: &str, decision: ApprovalDecision) -> Result<ApprovalDecided, TeamClientError> {
        let url = self.approvals_url(Some(id));
        let sent = self.http.post(&url).bearer_auth(self.token.expose()).json(&Answer { decision }).send().await;
        let body = read_json("the team service", &url, sent).await?;
        serde_json::from_value(body).map_err(|e| TeamClientError::Unexpected(format!("the answer is not one: {e}")))
    }
}

/// An id as one path segment: anything but letters, digits, `-` and `_` percent-encoded.
fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
