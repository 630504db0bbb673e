//! The scope vocabulary: one scope per (area, verb), and the presets built from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! scopes {
    ($($variant:ident => $text:literal,)*) => {
        /// A permission a client can be granted. Every tool needs exactly one.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Scope { $($variant,)* }

        impl Scope {
            pub const ALL: &'static [Scope] = &[$(Scope::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $text,)* }
            }
        }

        impl FromStr for Scope {
            type Err = UnknownScope;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok(Scope::$variant),)* _ => Err(UnknownScope(s.to_string())) }
            }
        }
    };
}

scopes! {
    AccountRead => "qc:account:read",
    ProjectsRead => "qc:projects:read",
    ProjectsWrite => "qc:projects:write",
    ProjectsDelete => "qc:projects:delete",
    FilesRead => "qc:files:read",
    FilesWrite => "qc:files:write",
    FilesDelete => "qc:files:delete",
    CompileExecute => "qc:compile:execute",
    BacktestsRead => "qc:backtests:read",
    BacktestsWrite => "qc:backtests:write",
    BacktestsDelete => "qc:backtests:delete",
    OptimizationsRead => "qc:optimizations:read",
    OptimizationsWrite => "qc:optimizations:write",
    OptimizationsDelete => "qc:optimizations:delete",
    LiveRead => "qc:live:read",
    LiveWrite => "qc:live:write",
    LiveExecute => "qc:live:execute",
    LiveDelete => "qc:live:delete",
    ObjectsRead => "qc:objects:read",
    ObjectsWrite => "qc:objects:write",
    ObjectsDelete => "qc:objects:delete",
    AiRead => "qc:ai:read",
    AiExecute => "qc:ai:execute",
    CollaborationRead => "qc:collaboration:read",
    CollaborationWrite => "qc:collaboration:write",
    CollaborationDelete => "qc:collaboration:delete",
    AdminRead => "qc:admin:read",
    AdminWrite => "qc:admin:write",
}

/// A scope string that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`: scopes look like `qc:backtests:read`; run `keybridge catalog` to see them all")]
pub struct UnknownScope(pub String);

impl Scope {
    /// The verb part: `read`, `write`, `delete` or `execute`.
    pub fn verb(self) -> &'static str {
        self.as_str().rsplit(':').next().unwrap_or_default()
    }

    /// Whether using this scope can trade live, destroy data or change account-wide settings:
    /// these default to asking the human.
    pub fn is_dangerous(self) -> bool {
        matches!(self, Scope::LiveWrite | Scope::LiveExecute | Scope::AdminWrite) || self.verb() == "delete"
    }

    /// Whether a tool of this scope deploys, commands, stops or deletes live trading: each such
    /// call is approved on its own, never under a standing allowance.
    pub fn acts_on_live_trading(self) -> bool {
        matches!(self, Scope::LiveWrite | Scope::LiveExecute | Scope::LiveDelete)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The named bundles of scopes offered when pairing a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    ReadOnly,
    Research,
    Trader,
    Admin,
}

impl Preset {
    pub const ALL: &'static [Preset] = &[Preset::ReadOnly, Preset::Research, Preset::Trader, Preset::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Preset::ReadOnly => "read-only",
            Preset::Research => "research",
            Preset::Trader => "trader",
            Preset::Admin => "admin",
        }
    }

    /// What the preset allows, in words a trader can judge.
    pub fn summary(self) -> &'static str {
        match self {
            Preset::ReadOnly => "Look at everything, change nothing: projects, code, backtests, live results.",
            Preset::Research => {
                "Read-only, plus edit projects and code, compile, run backtests and optimizations. No live trading, no deletes."
            }
            Preset::Trader => {
                "Research, plus deploy, stop and command live algorithms, write the object store and use the AI tools."
            }
            Preset::Admin => "Everything, including deletes and organization-wide commands.",
        }
    }

    pub fn scopes(self) -> Vec<Scope> {
        use Scope::*;
        let read_only = Scope::ALL.iter().copied().filter(|s| s.verb() == "read");
        let research = [ProjectsWrite, FilesWrite, CompileExecute, BacktestsWrite, OptimizationsWrite];
        let trader = [LiveWrite, LiveExecute, ObjectsWrite, AiExecute];
        let mut scopes: Vec<Scope> = match self {
            Preset::ReadOnly => read_only.collect(),
            Preset::Research => read_only.chain(research).collect(),
            Preset::Trader => read_only.chain(research).chain(trader).collect(),
            Preset::Admin => Scope::ALL.to_vec(),
        };
        scopes.sort();
        scopes
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .iter()
            .copied()
            .find(|p| p.name().eq_ignore_ascii_case(s) || p.name().replace('-', "") == s.to_ascii_lowercase())
            .ok_or_else(|| format!("unknown preset `{s}`: choose read-only, research, trader or admin"))
    }
}
