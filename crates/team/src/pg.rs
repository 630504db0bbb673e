//! What the PostgreSQL backends share: a connection on a thread of its own that comes back
//! after the database restarts, and a listener for one channel's notifications (what each
//! replica hears of the others' changes), which reconnects too and says so (a notification may
//! have been missed meanwhile). Errors never repeat the connection string: it may carry a
//! password.

use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use crate::worker::Worker;

/// One connection, its calls queued in order on a thread of its own.
pub(crate) struct Database {
    db: Worker<postgres::Client>,
    /// To connect again when the connection ends (a restarted database): held in memory only.
    config: Arc<str>,
}

impl Database {
    /// Connect as `config` says, on a thread called `name`, and run `schema` (idempotent).
    pub(crate) fn connect(config: &str, name: &str, schema: &'static str) -> Result<Database, String> {
        let owned = config.to_string();
        let db = Worker::start(name, move || postgres::Client::connect(&owned, postgres::NoTls))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let database = Database { db, config: Arc::from(config) };
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
                *client = postgres::Client::connect(&config, postgres::NoTls)?;
            }
            work(client)
        });
        match done {
            Ok(Ok(value)) => Ok(value),
            // The database's own words, not the driver's bare "db error".
            Ok(Err(e)) => Err(e.as_db_error().map_or_else(|| e.to_string(), |db| db.message().to_string())),
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
    config: &str,
    channel: &'static str,
    mut on_heard: impl FnMut(Heard<'_>, &mut postgres::Client) + Send + 'static,
) -> Result<(), String> {
    let connect = move |config: &str| {
        postgres::Client::connect(config, postgres::NoTls)
            .and_then(|mut client| client.batch_execute(&format!("LISTEN {channel}")).map(|()| client))
    };
    let config = config.to_string();
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("keybridge-listen-{channel}"))
        .spawn(move || {
            let mut client = match connect(&config) {
                Ok(client) => {
                    let _ = ready.send(Ok(()));
                    Some(client)
                }
                Err(e) => return drop(ready.send(Err(e.to_string()))),
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
