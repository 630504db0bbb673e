//! Per-scope policy: whether a granted scope runs, asks the human first, or is refused.

use std::collections::BTreeMap;
use std::str::FromStr;

use keybridge_catalog::Scope;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl From<Decision> for keybridge_broker_proto::PolicyDecision {
    fn from(decision: Decision) -> Self {
        use keybridge_broker_proto::PolicyDecision;
        match decision {
            Decision::Allow => PolicyDecision::Allow,
            Decision::Ask => PolicyDecision::Ask,
            Decision::Deny => PolicyDecision::Deny,
        }
    }
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

impl FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Decision::Allow),
            "ask" => Ok(Decision::Ask),
            "deny" => Ok(Decision::Deny),
            other => Err(format!("policy `{other}` is not allow, ask or deny")),
        }
    }
}

/// The default: ask before anything that trades live, deletes, or changes the organization.
pub fn default_decision(scope: Scope) -> Decision {
    if scope.is_dangerous() { Decision::Ask } else { Decision::Allow }
}

/// The decision for `scope`: the client's own override, else the broker-wide setting, else
/// the built-in default.
pub fn decide(scope: Scope, settings: &BTreeMap<Scope, Decision>, client: &BTreeMap<Scope, Decision>) -> Decision {
    client.get(&scope).or_else(|| settings.get(&scope)).copied().unwrap_or_else(|| default_decision(scope))
}

/// Overrides as the user writes them (`"qc:live:read": "ask"`), checked.
pub fn parse_overrides(policy: &BTreeMap<String, String>) -> Result<BTreeMap<Scope, Decision>, crate::BrokerError> {
    use crate::BrokerError;
    policy
        .iter()
        .map(|(scope, decision)| {
            let scope: Scope =
                scope.parse().map_err(|e: keybridge_catalog::UnknownScope| BrokerError::Invalid(e.to_string()))?;
            let decision: Decision = decision.parse().map_err(BrokerError::Invalid)?;
            Ok((scope, decision))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_ask_for_live_trading_deletes_and_admin_writes() {
        for scope in
            [Scope::LiveWrite, Scope::LiveExecute, Scope::ProjectsDelete, Scope::ObjectsDelete, Scope::AdminWrite]
        {
            assert_eq!(default_decision(scope), Decision::Ask, "{scope}");
        }
        for scope in [Scope::BacktestsWrite, Scope::FilesWrite, Scope::LiveRead, Scope::CompileExecute] {
            assert_eq!(default_decision(scope), Decision::Allow, "{scope}");
        }
    }

    #[test]
    fn the_client_overrides_the_settings_which_override_the_defaults() {
        let none = BTreeMap::new();
        let settings: BTreeMap<_, _> =
            [(Scope::LiveRead, Decision::Ask), (Scope::LiveWrite, Decision::Deny)].into_iter().collect();
        let client: BTreeMap<_, _> = [(Scope::LiveRead, Decision::Deny)].into_iter().collect();
        assert_eq!(decide(Scope::LiveRead, &settings, &client), Decision::Deny);
        assert_eq!(decide(Scope::LiveWrite, &settings, &client), Decision::Deny);
        assert_eq!(decide(Scope::LiveWrite, &none, &none), Decision::Ask);
        assert_eq!(decide(Scope::LiveRead, &settings, &none), Decision::Ask);
        assert_eq!(decide(Scope::FilesRead, &settings, &client), Decision::Allow);
    }
}
