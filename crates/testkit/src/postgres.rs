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
    /// With TLS: the CA (PEM) that signed the server's certificate, which names `localhost` only.
    pub ca_file: Option<PathBuf>,
}

impl Postgres {
    /// Start a fresh cluster that does not wait for the disk (tests); panics with what to install
    /// when the server's programs are missing.
    pub fn start() -> Postgres {
        Postgres::start_with(false, false)
    }

    /// Start a fresh cluster that flushes every commit to disk, as a production one does
    /// (benchmarks).
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true, false)
    }

    /// Start a fresh cluster that takes TLS connections only (a plain one is refused), its
    /// certificate for `localhost` signed by a CA of its own ([`Postgres::ca_file`]).
    pub fn start_tls_only() -> Postgres {
        Postgres::start_with(false, true)
    }

    fn start_with(durable: bool, tls: bool) -> Postgres {
        let bin = server_programs();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let as_root =
            String::from_utf8_lossy(&Command::new("id").arg("-u").output().expect("id runs").stdout).trim() == "0";
        if as_root {
            let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(owned.is_ok_and(|s| s.success()), "cannot hand the cluster's folder to the postgres user");
        }
        let port = free_port();
        let mut postgres = Postgres { dir, bin, as_root, port, ca_file: None };
        let data = postgres.data();
        postgres.run("initdb", &["-D", &data, "-U", "kb", "-A", "trust", "-E", "UTF8", "--no-sync"]);
        let fsync = if durable { "on" } else { "off" };
        let mut options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={fsync}", postgres.dir.path().display());
        if tls {
            options.push_str(&postgres.make_certificates());
        }
        let log = postgres.dir.path().join("server.log").display().to_string();
        postgres.run("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        postgres
    }

    /// A CA, and a server certificate for `localhost` it signed, made with `openssl`; TLS alone
    /// allowed over TCP. The server's options that use them.
    fn make_certificates(&mut self) -> String {
        let dir = self.dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=keybridge-test-ca", "-days", "2"],
            ]
            .concat(),
        );
        openssl(
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        );
        std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
            .expect("a file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        let data = self.dir.path().join("data");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .expect("pg_hba.conf");
        if self.as_root {
            let owned = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir).status();
            assert!(owned.is_ok_and(|s| s.success()), "cannot hand the certificates to the postgres user");
        }
        // PostgreSQL refuses a key others may read; it runs on Unix alone here.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        self.ca_file = Some(dir.join("ca.crt"));
        format!(" -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key", dir.display())
    }

    /// The connection string of its `postgres` database as the `kb` superuser; with TLS, by
    /// the name its certificate is for, TLS required.
    pub fn config(&self) -> String {
        match self.ca_file {
            Some(_) => format!("host=localhost port={} user=kb dbname=postgres sslmode=require", self.port),
            None => format!("host=127.0.0.1 port={} user=kb dbname=postgres", self.port),
        }
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
