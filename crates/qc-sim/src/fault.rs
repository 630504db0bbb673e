use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What goes wrong with a request that a [`FaultRule`] matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then answer normally.
    Latency(Duration),
    /// Answer with this HTTP status (500–599) and a short plain-text body.
    ServerError(u16),
    /// Answer 429 with `Retry-After: <retry_after_secs>`.
    RateLimited { retry_after_secs: u64 },
    /// Answer 200, `Content-Type: application/json`, with a truncated JSON body.
    MalformedJson,
    /// Close the TCP connection without writing any HTTP response.
    DropConnection,
    /// Accept the request and never answer (until the simulator shuts down).
    Timeout,
}

/// A fault applied to matching API requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// An endpoint such as `/backtests/read` (without `/api/v2`); `None` matches every endpoint.
    pub endpoint: Option<String>,
    pub fault: Fault,
    /// `Some(n)`: only the next `n` matching requests, then the rule is spent.
    /// `None`: every matching request until the rules are cleared.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule for every endpoint, until cleared.
    pub fn always(fault: Fault) -> FaultRule {
        FaultRule { endpoint: None, fault, times: None }
    }

    pub(crate) fn matches(&self, endpoint: &str) -> bool {
        self.endpoint.as_deref().is_none_or(|e| e == endpoint)
    }
}

/// Why a fault rule's text form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid fault rule {input:?}: {reason}. Accepted forms: 5xx[:CODE] (CODE 500-599), \
     429[:RETRY_AFTER_SECS], latency:N(ms|s), malformed, drop, timeout; optionally prefixed \
     with an endpoint as /backtests/read= and suffixed with *TIMES (e.g. /files/read=5xx:503*2)"
)]
pub struct FaultParseError {
    pub input: String,
    pub reason: String,
}

/// Strips the `/api/v2` prefix and any trailing slash, so rules and recorded requests
/// compare equal however a caller spelled the endpoint.
pub(crate) fn normalize_endpoint(raw: &str) -> String {
    let trimmed = raw.trim();
    let without = trimmed.strip_prefix("/api/v2").unwrap_or(trimmed);
    let without = without.trim_end_matches('/');
    if without.starts_with('/') { without.to_owned() } else { format!("/{without}") }
}

fn parse_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Some(ms) = value.strip_suffix("ms") {
        return ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    }
    if let Some(s) = value.strip_suffix('s') {
        return s.trim().parse::<u64>().ok().map(Duration::from_secs);
    }
    value.parse::<u64>().ok().map(Duration::from_millis)
}

fn parse_fault(spec: &str) -> Result<Fault, String> {
    let (kind, arg) = match spec.split_once(':') {
        Some((k, a)) => (k.trim(), Some(a.trim())),
        None => (spec.trim(), None),
    };
    match (kind.to_ascii_lowercase().as_str(), arg) {
        ("5xx" | "500", None) => Ok(Fault::ServerError(500)),
        ("5xx", Some(code)) => match code.parse::<u16>() {
            Ok(c) if (500..=599).contains(&c) => Ok(Fault::ServerError(c)),
            _ => Err(format!("{code:?} is not an HTTP status between 500 and 599")),
        },
        ("429", None) => Ok(Fault::RateLimited { retry_after_secs: 1 }),
        ("429", Some(secs)) => secs
            .parse::<u64>()
            .map(|retry_after_secs| Fault::RateLimited { retry_after_secs })
            .map_err(|_| format!("{secs:?} is not a whole number of seconds for Retry-After")),
        ("latency", Some(d)) => parse_duration(d)
            .map(Fault::Latency)
            .ok_or_else(|| format!("{d:?} is not a duration (write it as 150ms, 2s or 150)")),
        ("latency", None) => Err("latency needs a duration, as latency:150ms".to_owned()),
        ("malformed", None) => Ok(Fault::MalformedJson),
        ("drop", None) => Ok(Fault::DropConnection),
        ("timeout", None) => Ok(Fault::Timeout),
        ("malformed" | "drop" | "timeout", Some(a)) => Err(format!("{kind} takes no argument, but {a:?} was given")),
        _ => Err(format!("{spec:?} is not a known fault")),
    }
}

impl FromStr for FaultRule {
    type Err = FaultParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| FaultParseError { input: input.to_owned(), reason };
        let mut rest = input.trim();
        if rest.is_empty() {
            return Err(fail("the rule is empty".to_owned()));
        }

        let mut times = None;
        if let Some((head, count)) = rest.rsplit_once('*') {
            let n = count
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| fail(format!("{count:?} after '*' is not a count of 1 or more")))?;
            times = Some(n);
            rest = head.trim();
        }

        let mut endpoint = None;
        if rest.starts_with('/') {
            let (ep, fault) = rest
                .split_once('=')
                .ok_or_else(|| fail("an endpoint prefix must be followed by '=' and a fault".to_owned()))?;
            let ep = normalize_endpoint(ep);
            if ep.len() < 2 {
                return Err(fail("the endpoint before '=' is empty".to_owned()));
            }
            endpoint = Some(ep);
            rest = fault.trim();
        }

        let fault = parse_fault(rest).map_err(fail)?;
        Ok(FaultRule { endpoint, fault, times })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Latency(d) => write!(f, "latency:{}ms", d.as_millis()),
            Fault::ServerError(code) => write!(f, "5xx:{code}"),
            Fault::RateLimited { retry_after_secs } => write!(f, "429:{retry_after_secs}"),
            Fault::MalformedJson => f.write_str("malformed"),
            Fault::DropConnection => f.write_str("drop"),
            Fault::Timeout => f.write_str("timeout"),
        }
    }
}

/// The text form that [`FaultRule::from_str`] reads back.
impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ep) = &self.endpoint {
            write!(f, "{ep}=")?;
        }
        write!(f, "{}", self.fault)?;
        if let Some(n) = self.times {
            write!(f, "*{n}")?;
        }
        Ok(())
    }
}
