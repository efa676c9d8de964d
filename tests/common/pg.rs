//! A throwaway PostgreSQL cluster in a temporary directory, made with the installed server
//! binaries (`initdb`, `pg_ctl`: Debian's `postgresql`, which `.ci/run` installs). It listens on
//! 127.0.0.1 at a free port and on a unix socket in its own directory, trusts local users, and is
//! removed (stopped immediately) when dropped.
//!
//! The server refuses to run as root: as root (CI), the binaries run as the `postgres` user the
//! package creates (or `nobody`), through `runuser`, on a directory handed to that user.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The directory holding `initdb` and `pg_ctl`: on PATH, else the newest
/// `/usr/lib/postgresql/*/bin`. Fails the test, saying why, when there is none.
pub fn bin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&p) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                return d;
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries (initdb, pg_ctl) are neither on PATH nor under \
             /usr/lib/postgresql/*/bin: install Debian's `postgresql` package (.ci/run does)"
        ),
    }
}

/// The user to run the server as: none (ourselves) unless we are root.
fn run_as() -> Option<&'static str> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return None;
    }
    let has = |u: &str| {
        Command::new("id")
            .arg(u)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    Some(if has("postgres") {
        "postgres"
    } else {
        "nobody"
    })
}

/// A running cluster.
pub struct Cluster {
    bin: PathBuf,
    user: Option<&'static str>,
    /// The data directory.
    pub data: PathBuf,
    /// The unix socket directory.
    pub sock: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    fsync: bool,
    /// More `-c name=value` server settings.
    settings: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// `initdb` and `pg_ctl start` in a new temporary directory, without fsync (tests).
    pub fn start() -> Cluster {
        Self::start_with(false, &[])
    }

    /// The same with the server's default fsync on (benchmarks: figures a real server gives).
    pub fn start_durable() -> Cluster {
        Self::start_with(true, &[])
    }

    /// Durable, with these server settings (`name=value`) on top.
    pub fn start_durable_with(settings: &[&str]) -> Cluster {
        Self::start_with(true, settings)
    }

    fn start_with(fsync: bool, settings: &[&str]) -> Cluster {
        let bin = bin_dir();
        let user = run_as();
        let dir = tempfile::tempdir().unwrap();
        let (data, sock) = (dir.path().join("data"), dir.path().join("sock"));
        std::fs::create_dir(&sock).unwrap();
        if let Some(u) = user {
            // The server's user must reach its directories.
            chmod(dir.path(), 0o755);
            let st = Command::new("chown")
                .args(["-R", u])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown {u} {}", dir.path().display());
        }
        let port = crate::common::free_port();
        let c = Cluster {
            bin,
            user,
            data,
            sock,
            port,
            fsync,
            settings: settings.iter().map(|s| format!(" -c {s}")).collect(),
            _dir: dir,
        };
        let data = c.data.to_str().unwrap().to_string();
        c.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
                &data,
            ],
        );
        c.pg_ctl("start");
        c
    }

    /// The server's options: loopback and our socket only; for tests no fsync (their data need
    /// not survive a power cut, and the sink's exactly-once rests on transactions, not on fsync).
    fn opts(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync={}{}",
            self.port,
            self.sock.display(),
            if self.fsync { "on" } else { "off" },
            self.settings.concat()
        )
    }

    fn pg_ctl(&self, action: &str) {
        let (data, opts) = (self.data.to_str().unwrap(), self.opts());
        let log = self.data.join("server.log");
        let log = log.to_str().unwrap();
        let mut args = vec!["-D", data, "-w", "-t", "60", "-l", log];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        args.extend(["-o", &opts, action]);
        self.run("pg_ctl", &args);
    }

    /// Runs `bin/name args` (as the server's user when we are root); fails the test on error.
    fn run(&self, name: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(name);
        let mut cmd = match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        // The server's user may not read our working directory.
        let out = cmd.args(args).current_dir("/").output().unwrap();
        assert!(
            out.status.success(),
            "{name} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
        );
        out
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server comes back at once.
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// `pg_ctl start` after [`Cluster::stop`].
    pub fn start_again(&self) {
        self.pg_ctl("start");
    }

    /// A URL for database `postgres` as user `postgres` over TCP.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A client, retried for a few seconds (the server may be starting).
    pub fn client(&self) -> postgres::Client {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            match postgres::Client::connect(&self.url(), postgres::NoTls) {
                Ok(c) => return c,
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot connect to the test cluster: {e}"),
            }
        }
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap_or_default().to_string();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "stop"])
            .current_dir("/")
            .output();
    }
}
