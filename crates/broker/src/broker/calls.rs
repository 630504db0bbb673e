//! A tool call through the pipeline: cleared (token and session, pause, scope, arguments,
//! policy), asked (the human's approval, when the policy says so, with the question built from
//! what the broker itself looked up), executed at QuantConnect within the concurrency limits, and
//! recorded. Once sent, a call always completes and is recorded, even if its caller goes away.

use std::sync::Arc;
use std::time::Instant;

use keybridge_broker_proto::{BrokerEvent, Credential, ToolInfo};
use keybridge_catalog::{Preset, Scope, Tool};
use keybridge_quantconnect::Credentials;
use keybridge_vault::AccountId;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::limits::InFlight;
use super::{Broker, MAX_WAITING_PER_SESSION};
use crate::BrokerError;
use crate::approvals::{ApprovalKind, Approvals, Outcome as Answer, Pending};
use crate::audit::{AuditEvent, CallDecision, Outcome, ToolCallEvent};
use crate::clients::Client;
use crate::policy::Decision;
use crate::primitives::lock;
use crate::seams::ApprovalRelay;
use crate::text::{MAX_RECORDED_ERROR_CHARS, canonical, masked, plain_text, quoted, redact, trading_mode, truncate};
use crate::tokens::{Claims, random_id};

/// A call that passed every check and may be sent.
struct Cleared {
    account: AccountId,
    client: String,
    tool: &'static Tool,
    args: Map<String, Value>,
    /// Held until the call's answer: the client's calls at once count it.
    _place: InFlight,
}

/// The audit record of one call. Written when finished; if the call is dropped before (the
/// caller cancelled while it waited), it is written as cancelled.
struct CallRecord {
    broker: Arc<Broker>,
    started: Instant,
    record: Option<ToolCallEvent>,
}

impl CallRecord {
    fn fields(&mut self) -> &mut ToolCallEvent {
        self.record.get_or_insert_with(ToolCallEvent::default)
    }

    fn finish(&mut self, result: Result<(), &BrokerError>) {
        let Some(mut record) = self.record.take() else { return };
        record.latency_us = self.started.elapsed().as_micros() as u64;
        record.outcome = outcome_of(result);
        if let Err(e) = result {
            record.error = Some(truncate(&e.to_string(), MAX_RECORDED_ERROR_CHARS));
        }
        self.broker.record(AuditEvent::ToolCall(record));
    }
}

fn outcome_of<T>(result: Result<T, &BrokerError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Failed(e.code()),
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if self.record.is_some() {
            self.finish(Err(&BrokerError::Cancelled));
        }
    }
}

/// Withdraws a pending approval, here and wherever it was relayed, when the wait ends or the
/// waiting call is dropped (cancelled).
struct Withdraw<'a> {
    approvals: &'a Approvals,
    relay: &'a dyn ApprovalRelay,
    id: String,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.approvals.withdraw(&self.id);
        self.relay.settled(&self.id);
    }
}

impl Broker {
    pub fn list_tools(&self, session: Option<&str>, token: &Credential) -> Result<Vec<ToolInfo>, BrokerError> {
        let (claims, client) = self.authorize_for(session, token)?;
        let scopes = Self::effective_scopes(&claims, &client);
        Ok(keybridge_catalog::tools()
            .iter()
            .filter(|t| scopes.contains(&t.scope))
            .filter(|t| self.decide(t.scope, &client) != Decision::Deny)
            .map(|t| ToolInfo {
                name: t.name.to_string(),
                scope: t.scope.to_string(),
                policy: self.decide(t.scope, &client).as_str().to_string(),
            })
            .collect())
    }

    /// Run one tool for a bridge whose connection authenticated as `session` (`None` for
    /// in-process callers). `on_wait` is told when the call waits for the human.
    ///
    /// Once a call is cleared and sent to QuantConnect it runs to completion and is recorded,
    /// even if the caller cancels or goes away: a write that happened is never missing from the
    /// audit log. Cancelling before that point only stops the wait.
    pub async fn call(
        self: &Arc<Self>,
        session: Option<&str>,
        token: &Credential,
        tool_name: &str,
        arguments: Value,
        on_wait: impl FnOnce(&Pending),
    ) -> Result<Value, BrokerError> {
        let mut audit = CallRecord {
            broker: self.clone(),
            started: Instant::now(),
            record: Some(ToolCallEvent { tool: truncate(tool_name, 64), ..ToolCallEvent::default() }),
        };
        let cleared = match self.clear_call(session, token, tool_name, arguments, on_wait, audit.fields()).await {
            Ok(cleared) => cleared,
            Err(e) => {
                audit.finish(Err(&e));
                return Err(e);
            }
        };
        let broker = self.clone();
        let execution = tokio::spawn(async move {
            let result =
                broker.execute(&cleared.account, &cleared.client, cleared.tool, Value::Object(cleared.args)).await;
            audit.fields().upstream = Some(outcome_of(result.as_ref()));
            audit.finish(result.as_ref().map(|_| ()));
            result
        });
        execution.await.unwrap_or_else(|e| Err(BrokerError::CallStopped(e)))
    }

    /// Every check before a call may be sent: token and session, pause, scope, arguments,
    /// policy and, when the policy asks, the human's approval — after which the state is checked
    /// again, since a pause or revocation may have come while the human was deciding.
    async fn clear_call(
        &self,
        session: Option<&str>,
        token: &Credential,
        tool_name: &str,
        arguments: Value,
        on_wait: impl FnOnce(&Pending),
        audit: &mut ToolCallEvent,
    ) -> Result<Cleared, BrokerError> {
        self.audit_healthy()?;
        let (claims, client) = self.authorize_for(session, token)?;
        audit.client = Some(client.id.clone());
        audit.session = Some(claims.sid.clone());
        audit.account = Some(client.account.to_string());
        if self.is_paused() {
            return Err(BrokerError::Paused);
        }
        let caller = self.caller_of(&claims.sid);
        let place = self.meter.start_call(&client, caller.as_deref())?;
        let tool =
            keybridge_catalog::find(tool_name).ok_or_else(|| BrokerError::UnknownTool(truncate(tool_name, 64)))?;
        audit.scope = Some(tool.scope);
        self.check_scope(&claims, &client, tool)?;
        let args = tool.prepare(arguments).map_err(|e| BrokerError::InvalidArguments(e.to_string()))?;
        let args_digest = self.audit.keyed_digest(&canonical(&Value::Object(args.clone())));
        audit.args_digest = Some(args_digest.clone());
        audit.args = Some(redact(&args));
        let decision = self.decide(tool.scope, &client);
        audit.policy = Some(decision.as_str());
        match decision {
            Decision::Deny => return Err(BrokerError::PolicyDenied { scope: tool.scope.to_string() }),
            Decision::Allow => audit.decision = Some(CallDecision::Allowed),
            Decision::Ask if self.approvals.allowed(&claims.sid, tool.name) => {
                audit.decision = Some(CallDecision::AllowedForSession);
            }
            Decision::Ask => {
                // A model looping on a dangerous call must not bury the human in questions. The
                // place is taken before the look-ups that build the question, which take time.
                let Some(_place) = self.approvals.reserve(&claims.sid, MAX_WAITING_PER_SESSION) else {
                    return Err(BrokerError::Invalid(format!(
                        "{MAX_WAITING_PER_SESSION} calls of this session already wait for approval; answer those first"
                    )));
                };
                // Boxed: a question is rare, and its look-ups and wait would otherwise make every
                // call's future (moved into a task on every call) several times larger.
                let (pending, client_note) =
                    Box::pin(self.pending_call(&client, &claims, tool, &args, args_digest)).await;
                // The bridge hears the client-safe note, never what the broker looked up.
                let outcome = Box::pin(self.ask(pending, |pending| {
                    on_wait(&Pending { summary: client_note, preview: None, ..pending.clone() })
                }))
                .await?;
                audit.decision = Some(match outcome {
                    Answer::Approved => CallDecision::Approved,
                    Answer::ApprovedFor(_) => CallDecision::ApprovedForSession,
                    Answer::Denied => CallDecision::Denied,
                    Answer::TimedOut => CallDecision::TimedOut,
                });
                match outcome {
                    Answer::Approved | Answer::ApprovedFor(_) => {}
                    Answer::Denied => return Err(BrokerError::ApprovalDenied),
                    Answer::TimedOut => {
                        return Err(BrokerError::ApprovalTimedOut(self.approval_timeout().as_secs()));
                    }
                }
                let (claims, client) = self.authorize_for(session, token)?;
                if self.is_paused() {
                    return Err(BrokerError::Paused);
                }
                self.check_scope(&claims, &client, tool)?;
                if let Answer::ApprovedFor(duration) = outcome {
                    self.approvals.allow_for(&claims.sid, tool.name, duration);
                    self.record(AuditEvent::Allowance {
                        client: client.id.clone(),
                        session: claims.sid.clone(),
                        tool: tool.name.to_string(),
                        minutes: duration.as_secs() / 60,
                    });
                }
            }
        }
        if tool.name == "create_live_algorithm" {
            self.meter.deploy(&client, caller.as_deref())?;
        }
        Ok(Cleared { account: client.account, client: client.id, tool, args, _place: place })
    }

    fn check_scope(&self, claims: &Claims, client: &Client, tool: &Tool) -> Result<(), BrokerError> {
        // The same test as `effective_scopes(..).contains(..)`: in the token and still granted.
        if claims.has_scope(tool.scope) && client.scopes.contains(&tool.scope) {
            return Ok(());
        }
        Err(BrokerError::MissingScope {
            tool: tool.name.into(),
            scope: tool.scope.to_string(),
            client: client.id.clone(),
            preset: preset_with(tool.scope).into(),
        })
    }

    /// Open an approval, tell the caller, wait; the approval is withdrawn if the caller goes away.
    pub(super) async fn ask(&self, pending: Pending, on_wait: impl FnOnce(&Pending)) -> Result<Answer, BrokerError> {
        let ticket = self.approvals.open(pending, self.approval_timeout());
        let _withdraw =
            Withdraw { approvals: &self.approvals, relay: self.relay.as_ref(), id: ticket.pending.id.clone() };
        // A question no approver can see would only time out: the call fails now instead.
        self.relay.raised(&ticket.pending).map_err(|e| {
            BrokerError::Invalid(format!("the question could not be put to the approvers ({e}); nothing was sent"))
        })?;
        let _ = self.events.send(BrokerEvent::ApprovalOpened { approval: Box::new(ticket.pending.clone()) });
        on_wait(&ticket.pending);
        let id = ticket.pending.id.clone();
        let outcome = self.approvals.wait(ticket).await;
        let _ = self.events.send(BrokerEvent::ApprovalClosed { id });
        Ok(outcome)
    }

    /// The question for the human, and the note the waiting client may read: the human's
    /// version leads with what the arguments cannot shift (live or paper, the account, the
    /// project's id) and shows untrusted text as quoted data; the client's holds only what it
    /// sent itself, plus a looked-up name only if it may read projects.
    async fn pending_call(
        &self,
        client: &Client,
        claims: &Claims,
        tool: &Tool,
        args: &Map<String, Value>,
        args_digest: String,
    ) -> (Pending, String) {
        let opening = format!("{} wants to run {} on account {}", client.name, tool.name, client.account);
        let mut summary = format!("{opening}: {}", tool.description);
        let mut client_note = format!("{opening}.");
        let mut consequences = None;
        if let Some(Value::Object(brokerage)) = args.get("brokerage") {
            let id = brokerage.get("id").and_then(Value::as_str).unwrap_or("brokerage not named");
            let facts = format!(" Brokerage: {}, {}.", quoted(id, 60), trading_mode(brokerage));
            summary.push_str(&facts);
            client_note.push_str(&facts);
        }
        if let Some(project_id) = args.get("projectId").and_then(Value::as_i64) {
            // The name is the client's to choose (it may have renamed the project): it comes
            // after the id, quoted, so it cannot pass for the id or the rest of the sentence.
            let (name, preview) =
                tokio::join!(self.project_name(client, tool, project_id), self.preview(client, tool, args));
            consequences = preview;
            let named = name.as_deref().map_or_else(|| "name unavailable".to_string(), |n| quoted(n, 80));
            summary.push_str(&format!(" Project {project_id}, named {named}."));
            let may_read = Self::effective_scopes(claims, client).contains(&Scope::ProjectsRead);
            client_note.push_str(&match (may_read, name) {
                (true, Some(_)) => format!(" Project {project_id}, named {named}."),
                _ => format!(" Project {project_id}."),
            });
        }
        let shown: Vec<String> = redact(args)
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.as_str() != "projectId").map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        if !shown.is_empty() {
            summary.push_str(&format!(" Arguments: {}.", plain_text(&shown.join(", "), 600)));
        }
        if args.get("projectId").and_then(Value::as_i64).is_none() {
            consequences = self.preview(client, tool, args).await;
        }
        let id = format!("a-{}", random_id(6));
        // The same few letters in the window and in the waiting client: two requests at once
        // cannot be told apart by their tool alone.
        let code = id[2..6].to_ascii_uppercase();
        client_note.push_str(&format!(" Request code {code}."));
        let (host, host_program) =
            lock(&self.sessions).get(&claims.sid).map_or((None, None), |s| (s.host.clone(), s.host_program.clone()));
        let pending = Pending {
            preview: consequences,
            code: Some(code),
            host,
            host_program,
            id,
            kind: ApprovalKind::ToolCall,
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            session_id: Some(claims.sid.clone()),
            account: client.account.to_string(),
            tool: Some(tool.name.to_string()),
            scope: Some(tool.scope.to_string()),
            summary,
            arguments: masked(args),
            arguments_digest: args_digest,
            created: 0,
            expires: 0,
        };
        (pending, client_note)
    }

    /// The project's name for an approval summary; best effort, never blocks long.
    async fn project_name(&self, client: &Client, asked_for: &Tool, project_id: i64) -> Option<String> {
        let found = self.look_up(client, asked_for, "read_project", json!({"projectId": project_id})).await.ok()?;
        found.pointer("/projects/0/name").and_then(Value::as_str).map(str::to_string)
    }

    /// Run a cleared call at QuantConnect. An account has `account_concurrency` calls in flight
    /// at most, and one client at most half of them: a client's slow calls queue behind its
    /// own share, never in front of another client's.
    pub(super) async fn execute(
        &self,
        account: &AccountId,
        client: &str,
        tool: &Tool,
        args: Value,
    ) -> Result<Value, BrokerError> {
        let creds = self.credentials_for(account)?;
        let share = (self.config.account_concurrency / 2).max(1);
        let semaphore = |key: String, permits: usize| {
            lock(&self.limits).entry(key).or_insert_with(|| Arc::new(Semaphore::new(permits))).clone()
        };
        let closed = |e: tokio::sync::AcquireError| BrokerError::Internal(e.to_string());
        let client_permit =
            semaphore(format!("{account}\u{0}{client}"), share).acquire_owned().await.map_err(closed)?;
        let account_permit =
            semaphore(account.to_string(), self.config.account_concurrency).acquire_owned().await.map_err(closed)?;
        let result = self.qc.call(&creds, tool, args).await;
        drop((account_permit, client_permit));
        Ok(result?)
    }

    pub(super) fn credentials_for(&self, account: &AccountId) -> Result<Arc<Credentials>, BrokerError> {
        if let Some(creds) = lock(&self.credentials).get(account.as_str()) {
            return Ok(creds.clone());
        }
        let meta = self.accounts.get(account)?.ok_or_else(|| {
            BrokerError::NotFound(format!(
                "account `{account}` is not set up; add it with `keybridge account add {account}`"
            ))
        })?;
        let token = self.accounts.token(account)?;
        let creds = Arc::new(Credentials { user_id: meta.user_id, api_token: token });
        lock(&self.credentials).insert(account.to_string(), creds.clone());
        Ok(creds)
    }
}

/// The smallest preset that includes `scope`, for error messages.
fn preset_with(scope: Scope) -> &'static str {
    Preset::ALL.iter().find(|p| p.scopes().contains(&scope)).map(|p| p.name()).unwrap_or("admin")
}
