//! What the PostgreSQL backends share: how to reach the database (TLS to it wherever it is not
//! on this machine), a connection on a thread of its own that comes back after the database
//! restarts, and a listener for one channel's notifications (what each replica hears of the
//! others' changes), which reconnects too and says so (a notification may have been missed
//! meanwhile). Errors never repeat the connection string: it may carry a password.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::fallible_iterator::FallibleIterator;

use crate::worker::Worker;

/// How to reach the team's database: a libpq connection string, and TLS with the server's
/// certificate and host name checked (libpq's `verify-full`) unless it says `sslmode=disable`.
/// Over the network, TLS is required: whoever sits between a replica and its database could
/// otherwise read the questions and forge their answers.
#[derive(Clone)]
pub struct PgConfig {
    /// Held in memory only: it may carry a password.
    text: Arc<str>,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig").field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

fn on_this_machine(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

impl PgConfig {
    /// The database `text` names (a libpq connection string), its server's certificate checked
    /// against the certificates in `ca_file` (PEM), or the system's roots without one.
    pub fn new(text: &str, ca_file: Option<&Path>) -> Result<PgConfig, String> {
        let parsed: postgres::Config = text.parse().map_err(|e: postgres::Error| {
            // The parser's words name the bad option, never its value.
            format!("the `database` connection string is not one libpq reads ({e})")
        })?;
        let remote: Vec<String> = parsed
            .get_hosts()
            .iter()
            .filter(|host| !on_this_machine(host))
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let mode = parsed.get_ssl_mode();
        if !remote.is_empty() && mode != SslMode::Require {
            return Err(format!(
                "the database at {} is reached over the network without TLS required: add `sslmode=require` to `database`                  (the server's certificate and name are then checked; `database_ca` names a private CA),                  or run this replica on the database's host",
                remote.join(", ")
            ));
        }
        if mode == SslMode::Disable {
            return Ok(PgConfig { text: Arc::from(text), tls: None });
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS to the database: {e}"))?;
        let tls = match ca_file {
            Some(ca_file) => {
                use rustls::pki_types::pem::PemObject;
                let unreadable = |e: &dyn std::fmt::Display| {
                    format!("cannot read the database's CA certificates from {}: {e}", ca_file.display())
                };
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_file).map_err(|e| unreadable(&e))? {
                    roots.add(cert.map_err(|e| unreadable(&e))?).map_err(|e| unreadable(&e))?;
                }
                if roots.is_empty() {
                    return Err(unreadable(&"no certificate in it"));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder
                    .with_platform_verifier()
                    .map_err(|e| format!("cannot read this system's CA certificates: {e}"))?
                    .with_no_client_auth()
            }
        };
        Ok(PgConfig { text: Arc::from(text), tls: Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)) })
    }

    fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        match &self.tls {
            Some(tls) => postgres::Client::connect(&self.text, tls.clone()),
            None => postgres::Client::connect(&self.text, postgres::NoTls),
        }
    }
}

/// What went wrong, in the database's own words (not the driver's bare "db error"), or the
/// driver's with its causes (a TLS handshake's says which check failed).
pub(crate) fn words(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return db.message().to_string();
    }
    let mut said = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        said.push_str(&format!(": {next}"));
        cause = next.source();
    }
    said
}

/// One connection, its calls queued in order on a thread of its own.
pub(crate) struct Database {
    db: Worker<postgres::Client>,
    /// To connect again when the connection ends (a restarted database).
    config: PgConfig,
}

impl Database {
    /// Connect as `config` says, on a thread called `name`, and run `schema` (idempotent).
    pub(crate) fn connect(config: &PgConfig, name: &str, schema: &'static str) -> Result<Database, String> {
        let owned = config.clone();
        let db = Worker::start(name, move || owned.connect()).map_err(|e| e.to_string())?.map_err(|e| words(&e))?;
        let database = Database { db, config: config.clone() };
        database.run(move |client| client.batch_execute(schema))?;
        Ok(database)
    }

    /// Run `work` on the connection, made again first if the database ended it.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, String> {
        let config = self.config.clone();
        let done = self.db.run(move |client| {
            // A connection the database ended (a restart, a failover) is made again first.
            if client.is_closed() {
                *client = config.connect()?;
            }
            work(client)
        });
        match done {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(words(&e)),
            Err(_) => Err("its connection thread stopped".into()),
        }
    }
}

/// What the listener heard.
pub(crate) enum Heard<'a> {
    /// A notification, with its payload.
    Notified(&'a str),
    /// Listening again on a new connection: anything may have been missed.
    Reconnected,
}

/// Listen on `channel` and hand each thing heard, with the listening connection (to read what
/// changed), to `on_heard`. Returns once the first connection listens.
pub(crate) fn listen(
    config: &PgConfig,
    channel: &'static str,
    mut on_heard: impl FnMut(Heard<'_>, &mut postgres::Client) + Send + 'static,
) -> Result<(), String> {
    let connect = move |config: &PgConfig| {
        config.connect().and_then(|mut client| client.batch_execute(&format!("LISTEN {channel}")).map(|()| client))
    };
    let config = config.clone();
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("keybridge-listen-{channel}"))
        .spawn(move || {
            let mut client = match connect(&config) {
                Ok(client) => {
                    let _ = ready.send(Ok(()));
                    Some(client)
                }
                Err(e) => return drop(ready.send(Err(words(&e)))),
            };
            loop {
                let Some(listening) = client.as_mut() else {
                    std::thread::sleep(Duration::from_millis(500));
                    client = connect(&config).ok();
                    if let Some(listening) = client.as_mut() {
                        on_heard(Heard::Reconnected, listening);
                    }
                    continue;
                };
                // Waits a few seconds at most, then asks the database whether it is still there: a
                // connection that died without a word must not leave this replica deaf.
                let heard = listening.notifications().timeout_iter(Duration::from_secs(5)).next();
                match heard {
                    Ok(Some(notification)) => on_heard(Heard::Notified(notification.payload()), listening),
                    Ok(None) if listening.simple_query("SELECT 1").is_ok() => {}
                    // The connection ended: listen again on a new one.
                    _ => client = None,
                }
            }
        })
        .map_err(|e| e.to_string())?;
    listening.recv().map_err(|_| "the listening thread stopped".to_string())?
}
