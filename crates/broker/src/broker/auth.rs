//! Authentication: a bridge proves itself by its client key, or, for a host-bound client, by
//! what the OS says about the program at the other end of the socket (the human approves each
//! new host once). A session and its short-lived token follow; every later call is checked
//! against both, so ending a session or revoking a client takes effect on the next call.

use std::collections::BTreeSet;
use std::path::Path;

use keybridge_broker_proto::{AuthFailure, Credential, SessionInfo};
use keybridge_catalog::Scope;
use serde_json::json;

use super::{Broker, Session};
use crate::approvals::{ApprovalKind, Outcome, Pending};
use crate::audit::{AuditEvent, AuthMethod};
use crate::clients::{Client, ClientAuth, key_hash};
use crate::peer::{Host, Peer};
use crate::primitives::{lock, now, same_secret};
use crate::text::{canonical, truncate};
use crate::tokens::{Claims, Grant, TokenError, random_id};
use crate::{BrokerError, own_uid};

/// Why authentication failed: the error for the bridge, and the reason it is counted under
/// (none for a fault of Keybridge's own after the bridge proved itself).
struct Refusal {
    reason: Option<AuthFailure>,
    error: BrokerError,
}

impl Broker {
    /// Authenticate a bridge for `client_id`: by its key, or by what the OS says about the peer
    /// (asking the human the first time a host executable is seen).
    pub async fn authenticate(
        &self,
        client_id: &str,
        key: Option<&Credential>,
        peer: &Peer,
    ) -> Result<SessionInfo, BrokerError> {
        let result = self.authenticate_inner(client_id, key, peer).await;
        let host = peer.host.as_ref().map(Host::key);
        if let Err(Refusal { reason: Some(reason), .. }) = &result {
            self.auth_failures.note(&truncate(client_id, 64), *reason);
        }
        let result = result.map_err(|refusal| refusal.error);
        match &result {
            Ok(session) => self.record(AuditEvent::Authentication {
                client: truncate(client_id, 64),
                ok: true,
                session: Some(session.session_id.clone()),
                host,
                method: Some(if key.is_some() { AuthMethod::Key } else { AuthMethod::Host }),
                reason: None,
            }),
            Err(e) => self.record(AuditEvent::Authentication {
                client: truncate(client_id, 64),
                ok: false,
                session: None,
                host,
                method: None,
                reason: Some(e.to_string()),
            }),
        }
        result
    }

    async fn authenticate_inner(
        &self,
        client_id: &str,
        key: Option<&Credential>,
        peer: &Peer,
    ) -> Result<SessionInfo, Refusal> {
        use AuthFailure::*;
        let refused = |reason| move |error| Refusal { reason: Some(reason), error };
        if client_id.len() > 64 {
            return Err(refused(UnknownClient)(BrokerError::NotFound("a client id is at most 64 characters".into())));
        }
        if peer.uid != own_uid() {
            let error = BrokerError::PairingDenied(format!("the peer runs as uid {}, not as this user", peer.uid));
            return Err(refused(OtherUser)(error));
        }
        let client = self.known_client(client_id).map_err(|error| Refusal { reason: None, error })?;
        let client = client.ok_or_else(|| {
            refused(UnknownClient)(BrokerError::NotFound(format!(
                "no client `{client_id}`; `keybridge client list` shows the paired clients"
            )))
        })?;
        if client.revoked {
            let error = BrokerError::Revoked(format!("client `{client_id}` was revoked; pair it again in Keybridge"));
            return Err(refused(Revoked)(error));
        }
        match (&client.auth, key) {
            (ClientAuth::Key { key_sha256 }, Some(key)) => {
                if !same_secret(key_hash(key.expose()), key_sha256) {
                    return Err(refused(BadKey)(BrokerError::PairingDenied(format!(
                        "wrong client key for `{client_id}`"
                    ))));
                }
            }
            (ClientAuth::Key { .. }, None) => {
                return Err(refused(BadKey)(BrokerError::PairingDenied(format!(
                    "client `{client_id}` uses a client key; set KEYBRIDGE_CLIENT_KEY for the bridge"
                ))));
            }
            (ClientAuth::HostBound { .. }, Some(_)) => {
                return Err(refused(BadKey)(BrokerError::PairingDenied(format!(
                    "client `{client_id}` is host-bound and takes no key; remove KEYBRIDGE_CLIENT_KEY"
                ))));
            }
            // The app's connection test: the broker started this bridge itself, so there is no
            // other program to approve, and none is remembered.
            (ClientAuth::HostBound { .. }, None) if self.own_bridge(peer) => {
                self.check_bridge_executable(peer).map_err(refused(PairingRefused))?
            }
            (ClientAuth::HostBound { approved_hosts }, None) => {
                self.check_bridge_executable(peer).map_err(refused(PairingRefused))?;
                let host = peer.host.as_ref().ok_or_else(|| {
                    refused(PairingRefused)(BrokerError::PairingDenied(format!(
                        "cannot tell which program started the bridge (it was started from a terminal, a shell session or a service); pair a client with a key for it: `keybridge client add NAME --account {} --key`",
                        client.account
                    )))
                })?;
                if !approved_hosts.contains(&host.key()) {
                    self.approve_pairing(&client, host).await.map_err(refused(PairingRefused))?;
                }
            }
        }
        let host = match &peer.host {
            _ if self.own_bridge(peer) => "Keybridge (connection test)".into(),
            Some(host) => host.describe(),
            None => "a program Keybridge cannot name".into(),
        };
        let host_program = peer.host.as_ref().map(|h| h.program.display().to_string());
        let session_id = format!("s-{}", random_id(8));
        lock(&self.sessions).insert(
            session_id.clone(),
            Session {
                client_id: client.id.clone(),
                host: Some(host),
                host_program,
                started: now(),
                revoked: false,
                limit: None,
            },
        );
        let unrefused = |error| Refusal { reason: None, error };
        lock(&self.clients).touch(&client.id, now()).map_err(unrefused)?;
        self.mint(&client, &session_id).map_err(unrefused)
    }

    /// The SHA-256 of each accepted bridge executable, read once.
    fn shipped_bridge_digests(&self) -> &[[u8; 32]] {
        self.bridge_digests.get_or_init(|| {
            use sha2::Digest;
            self.config
                .bridge_executables
                .iter()
                .filter_map(|path| std::fs::read(path).ok())
                .map(|bytes| sha2::Sha256::digest(&bytes).into())
                .collect()
        })
    }

    fn own_bridge(&self, peer: &Peer) -> bool {
        self.config.trust_own_bridges && peer.launched_by_broker
    }

    fn check_bridge_executable(&self, peer: &Peer) -> Result<(), BrokerError> {
        let Some(exe) = &peer.exe else {
            return Err(BrokerError::PairingDenied(
                "the OS did not say which program connected; use a client key on this platform".into(),
            ));
        };
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if self.config.bridge_executables.iter().any(|b| canonical(b) == canonical(exe)) {
            return Ok(());
        }
        // A copy of the shipped bridge elsewhere (Claude Desktop unpacks the MCP Bundle's into
        // its extensions folder) is the same program: the same bytes.
        let shipped = self.shipped_bridge_digests();
        if !shipped.is_empty() && peer.program_digest().is_some_and(|running| shipped.contains(&running)) {
            Ok(())
        } else {
            Err(BrokerError::PairingDenied(format!(
                "{} is not the keybridge-mcp bridge that ships with Keybridge",
                exe.display()
            )))
        }
    }

    async fn approve_pairing(&self, client: &Client, host: &Host) -> Result<(), BrokerError> {
        let key = (client.id.clone(), host.key());
        let (asked_already, tell) = {
            let mut pairings = lock(&self.pairings);
            match pairings.get(&key) {
                Some(answer) => (Some(answer.clone()), None),
                None => {
                    let (tell, answer) = tokio::sync::watch::channel(None);
                    pairings.insert(key.clone(), answer);
                    (None, Some(tell))
                }
            }
        };
        if let Some(mut answer) = asked_already {
            let approved = loop {
                if let Some(approved) = *answer.borrow() {
                    break approved;
                }
                if answer.changed().await.is_err() {
                    break false;
                }
            };
            return if approved {
                Ok(())
            } else {
                Err(BrokerError::PairingDenied("the connection was not approved in Keybridge".into()))
            };
        }
        let result = self.ask_pairing(client, host).await;
        if let Some(tell) = tell {
            let _ = tell.send(Some(result.is_ok()));
        }
        lock(&self.pairings).remove(&key);
        result
    }

    async fn ask_pairing(&self, client: &Client, host: &Host) -> Result<(), BrokerError> {
        let (key, described) = (host.key(), host.describe());
        let pending = Pending {
            preview: None,
            code: None,
            host: None,
            host_program: Some(host.program.display().to_string()),
            id: format!("a-{}", random_id(6)),
            kind: ApprovalKind::Pairing,
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            session_id: None,
            account: client.account.to_string(),
            tool: None,
            scope: None,
            summary: format!(
                "{} wants to connect to account {} for the first time from {described:?}. Approve only if you just started that program.",
                client.name, client.account
            ),
            arguments: json!({"host": key, "program": host.program, "script": host.script}),
            arguments_digest: self.audit.keyed_digest(&canonical(&json!({"host": key}))),
            created: 0,
            expires: 0,
        };
        match self.ask(pending, |_| {}).await? {
            Outcome::Approved | Outcome::ApprovedFor(_) => {
                lock(&self.clients).update(&client.id, |c| {
                    if let ClientAuth::HostBound { approved_hosts } = &mut c.auth {
                        approved_hosts.insert(key.clone());
                    }
                })?;
                Ok(())
            }
            Outcome::Denied => Err(BrokerError::PairingDenied("you denied the connection in Keybridge".into())),
            Outcome::TimedOut => Err(BrokerError::PairingDenied(format!(
                "nobody approved the connection in Keybridge within {}s",
                self.approval_timeout().as_secs()
            ))),
        }
    }

    pub(super) fn mint(&self, client: &Client, session_id: &str) -> Result<SessionInfo, BrokerError> {
        let grant = Grant {
            client_id: client.id.clone(),
            session_id: session_id.to_string(),
            account: client.account.to_string(),
            scopes: client.scopes.clone(),
            ttl_secs: client.token_ttl_secs,
        };
        let (token, claims) = self.tokens.mint(&grant)?;
        self.record(AuditEvent::TokenMinted {
            client: client.id.clone(),
            session: session_id.to_string(),
            jti: claims.jti.clone(),
            expires: claims.exp,
        });
        Ok(SessionInfo {
            session_id: session_id.to_string(),
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            account: client.account.to_string(),
            scopes: client.scopes.iter().map(|s| s.to_string()).collect(),
            token: Credential::new(token),
            expires_at: claims.exp,
            paused: self.is_paused(),
        })
    }

    /// A session for a caller its host authenticated itself: team mode's resource server
    /// checked an identity provider's token for `who`. The session acts as `client_id` with no
    /// more than `scopes`; everything after (policy, approvals, limits, audit) is as for a bridge.
    pub fn session_for_principal(
        &self,
        client_id: &str,
        who: &str,
        scopes: &BTreeSet<Scope>,
    ) -> Result<SessionInfo, BrokerError> {
        let opened = self.open_principal_session(client_id, who, scopes);
        self.record(AuditEvent::Authentication {
            client: truncate(client_id, 64),
            ok: opened.is_ok(),
            session: opened.as_ref().ok().map(|s| s.session_id.clone()),
            host: Some(truncate(who, 200)),
            method: opened.is_ok().then_some(AuthMethod::IdentityProvider),
            reason: opened.as_ref().err().map(ToString::to_string),
        });
        opened
    }

    fn open_principal_session(
        &self,
        client_id: &str,
        who: &str,
        scopes: &BTreeSet<Scope>,
    ) -> Result<SessionInfo, BrokerError> {
        let client = self.known_client(client_id)?;
        let mut client = client.ok_or_else(|| BrokerError::NotFound(format!("no client `{client_id}`")))?;
        if client.revoked {
            return Err(BrokerError::Revoked(format!("client `{client_id}` was revoked in Keybridge")));
        }
        let session_id = format!("s-{}", random_id(8));
        let session = Session {
            client_id: client.id.clone(),
            host: Some(truncate(who, 200)),
            host_program: None,
            started: now(),
            revoked: false,
            limit: Some(scopes.clone()),
        };
        lock(&self.sessions).insert(session_id.clone(), session);
        // The token carries no more than the identity provider granted.
        client.scopes = client.scopes.intersection(scopes).copied().collect();
        self.mint(&client, &session_id)
    }

    /// A fresh token for a live session; the client's current scopes apply.
    pub fn refresh(&self, session_id: &str) -> Result<SessionInfo, BrokerError> {
        // The session's limit is read first: a session gone by then is refused below, never
        // refreshed without its limit.
        let limit = lock(&self.sessions).get(session_id).map(|s| s.limit.clone());
        let mut client = self.live_client(session_id)?;
        let limit = limit.ok_or_else(|| BrokerError::Revoked("this session ended".into()))?;
        if let Some(limit) = limit {
            client.scopes = client.scopes.intersection(&limit).copied().collect();
        }
        self.mint(&client, session_id)
    }

    /// The session's client, if neither is revoked.
    pub(super) fn live_client(&self, session_id: &str) -> Result<Client, BrokerError> {
        let session = lock(&self.sessions).get(session_id).cloned().ok_or_else(|| {
            BrokerError::Revoked("this session is unknown to the broker (ended, or the broker restarted)".into())
        })?;
        if session.revoked {
            return Err(BrokerError::Revoked("this session was ended in Keybridge".into()));
        }
        self.catch_up()?;
        let client = lock(&self.clients)
            .get(&session.client_id)
            .cloned()
            .ok_or_else(|| BrokerError::Revoked(format!("client `{}` no longer exists", session.client_id)))?;
        if client.revoked {
            return Err(BrokerError::Revoked(format!("client `{}` was revoked in Keybridge", client.id)));
        }
        Ok(client)
    }

    /// Verify a token and the state behind it, on every call; a refusal is counted. A connection that authenticated
    /// as a session accepts only that session's tokens.
    pub(super) fn authorize_for(
        &self,
        session: Option<&str>,
        token: &Credential,
    ) -> Result<(Claims, Client), BrokerError> {
        let authorized = self.check_token(session, token);
        if let Err(e) = &authorized {
            let reason = match e {
                BrokerError::TokenExpired => AuthFailure::Expired,
                BrokerError::Revoked(_) => AuthFailure::Revoked,
                _ => AuthFailure::InvalidToken,
            };
            // The connection's session says whose token it was; a token alone, once refused, does not.
            let client = session.and_then(|s| lock(&self.sessions).get(s).map(|s| s.client_id.clone()));
            self.auth_failures.note(client.as_deref().unwrap_or("(unknown)"), reason);
        }
        authorized
    }

    fn check_token(&self, session: Option<&str>, token: &Credential) -> Result<(Claims, Client), BrokerError> {
        let claims = self.tokens.verify(token.expose()).map_err(token_error)?;
        if session.is_some_and(|s| s != claims.sid) {
            return Err(BrokerError::TokenInvalid(
                "this token belongs to another session; reconnect the bridge".into(),
            ));
        }
        let client = self.live_client(&claims.sid)?;
        if client.id != claims.sub {
            return Err(BrokerError::TokenInvalid("the token's client does not match its session".into()));
        }
        Ok((claims, client))
    }

    /// The scopes that apply: granted in the token and still granted to the client.
    pub(super) fn effective_scopes(claims: &Claims, client: &Client) -> BTreeSet<Scope> {
        claims.scopes().intersection(&client.scopes).copied().collect()
    }
}

fn token_error(e: TokenError) -> BrokerError {
    match e {
        TokenError::Expired => BrokerError::TokenExpired,
        other => BrokerError::TokenInvalid(format!("{other}; reconnect the bridge")),
    }
}
