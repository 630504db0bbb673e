//! A PostgreSQL server of the test's own: a fresh cluster in a temporary folder, on a free
//! loopback port, stopped and removed when dropped. It needs the server's programs (Debian's
//! `postgresql` package); as root it runs them as the `postgres` user, which PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster whose superuser is `kb`, trusted on loopback.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_root: bool,
    pub port: u16,
}

impl Postgres {
    /// Start a fresh cluster that does not wait for the disk (tests); panics with what to install
    /// when the server's programs are missing.
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// Start a fresh cluster that flushes every commit to disk, as a production one does
    /// (benchmarks).
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(durable: bool) -> Postgres {
        let bin = server_programs();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let as_root =
            String::from_utf8_lossy(&Command::new("id").arg("-u").output().expect("id runs").stdout).trim() == "0";
        if as_root {
            let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(owned.is_ok_and(|s| s.success()), "cannot hand the cluster's folder to the postgres user");
        }
        let port = free_port();
        let postgres = Postgres { dir, bin, as_root, port };
        let data = postgres.data();
        postgres.run("initdb", &["-D", &data, "-U", "kb", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        let fsync = if durable { "on" } else { "off" };
        let options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync}", postgres.dir.path().display());
        let log = postgres.dir.path().join("server.log").display().to_string();
        postgres.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        postgres
    }

    /// The connection string of its `postgres` database as the `kb` superuser.
    pub fn config(&self) -> String {
        format!("host=127.0.0.1 port={} user=kb dbname=postgres", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// One of the server's programs, as the user the cluster runs as.
    fn program(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out =
            self.program(program).args(args).current_dir(self.dir.path()).output().expect("PostgreSQL's programs run");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.program("pg_ctl").args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}

/// The newest installed server's programs (`/usr/lib/postgresql/<version>/bin`).
fn server_programs() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries.flatten().map(|e| e.path().join("bin")).filter(|bin| bin.join("initdb").exists()).collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!("PostgreSQL's server is not installed: `apt-get install postgresql` (scripts/dev.sh deps does)")
    })
}

/// A loopback port free now.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}
