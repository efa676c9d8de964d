//! The shm tools against hostile input (issue 10): sizes no machine has, paths that are FIFOs or
//! directories, headers that ask for impossible files, writers that were killed or stopped, readers
//! in another PID namespace. Each gets one clear sentence and the right exit status, never a hang
//! or a file left behind; the Python reader says the same things.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::python;
use tickwire_shm::Reader;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tickwire"))
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shm/python/tickwire_shm.py")
}

/// Runs `cmd` to completion, failing the test (and killing it) if it takes over 20 s: a tool that
/// blocks on a FIFO must fail here, not hang the suite.
fn run(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} hung for 20 s; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A synthetic writer on `path` for `seconds`, returned once its file is live.
fn live_writer(path: &Path, seconds: u32) -> Child {
    let mut w = bin()
        .args(["shm", "write-synthetic", "--symbols", "3", "--rate", "1000"])
        .args(["--seconds", &seconds.to_string(), "--ring-capacity", "1024"])
        .arg("--path")
        .arg(path)
        .stderr(Stdio::null())
        .spawn()
        .expect("start writer");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Reader::open(path).is_err() {
        assert!(w.try_wait().unwrap().is_none(), "writer exited early");
        assert!(Instant::now() < deadline, "writer never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    w
}

/// SIGKILLs `w` and waits until it is a zombie, without reaping it: its `/proc/<pid>` stays, its
/// heartbeat is fresh, so only the released lock can tell a reader it is gone.
fn kill_leaving_zombie(w: &mut Child) {
    w.kill().unwrap();
    let stat = format!("/proc/{}/stat", w.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = std::fs::read_to_string(&stat).unwrap();
        // "pid (comm) S ...": the state follows the last ')'.
        if s.rsplit(')').next().unwrap().trim_start().starts_with('Z') {
            return;
        }
        assert!(Instant::now() < deadline, "writer never became a zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn shm(args: &[&str], path: &Path) -> Output {
    run(bin().arg("shm").args(args).arg("--path").arg(path))
}

#[test]
fn a_ring_bigger_than_memory_is_refused_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let out = shm(
        &["write-synthetic", "--ring-capacity", "1099511627776"],
        &path,
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("ring capacity 1099511627776")
            && err.contains("448.0 TiB")
            && err.contains("is available (MemAvailable")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "no file, no temporary file"
    );
}

#[test]
fn a_failure_after_the_temporary_file_exists_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    // A file-size limit lets the writer create its temporary file, then refuses to size it (EFBIG;
    // SIGXFSZ ignored so the error is returned rather than the process killed).
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(
            "trap '' XFSZ; ulimit -f 64; exec \"$0\" shm write-synthetic --seconds 1 --path \"$1\"",
        )
        .arg(env!("CARGO_BIN_EXE_tickwire"))
        .arg(&path));
    assert!(!out.status.success(), "the size limit must stop the writer");
    assert!(
        text(&out.stderr).contains("File too large"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "the temporary file is removed: {:?}",
        names_in(dir.path())
    );
}

#[test]
fn fifos_and_directories_get_one_sentence_and_never_block() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path());
    for (path, kind) in [(&fifo, "a FIFO"), (&dir.path().to_owned(), "a directory")] {
        let want = format!(
            "tickwire: error: {} is {kind}, not a tickwire shm file\n",
            path.display()
        );
        for sub in ["stat", "tail"] {
            let out = shm(&[sub], path);
            assert_eq!(out.status.code(), Some(1), "{sub} on {kind}");
            assert_eq!(text(&out.stderr), want, "{sub} on {kind}");
        }
        let out = run(bin().args(["shm", "rm", "--force"]).arg(path));
        assert_eq!(out.status.code(), Some(1), "rm on {kind}");
        assert_eq!(text(&out.stderr), want, "rm on {kind}");
        assert!(path.exists());
    }
}

#[test]
fn stat_exits_0_for_a_closed_file_3_for_a_dead_writer_4_for_a_stopped_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let out = shm(&["write-synthetic", "--seconds", "0.2"], &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = shm(&["stat"], &path);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "closed is not a failure: {}",
        text(&out.stderr)
    );
    assert!(stdout.contains("writer status   closed at 20"), "{stdout}");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    let mut w = live_writer(&path, 60);
    let out = shm(&["stat"], &path);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("writer status   live"));

    // Stopped: still holds the file, no heartbeat.
    let pid = w.id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(5_500));
    let out = shm(&["stat"], &path);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has not heartbeat for"),
        "{}",
        text(&out.stderr)
    );
    let out = run(bin().args(["shm", "rm"]).arg(&path));
    assert!(
        !out.status.success(),
        "a stopped writer's file is not removed"
    );
    assert!(
        text(&out.stderr).contains("in use by a live writer"),
        "{}",
        text(&out.stderr)
    );

    // Killed: the kernel drops its lock; /proc/<pid> (a zombie) would still say it exists.
    kill_leaving_zombie(&mut w);
    for sub in ["stat", "tail"] {
        let out = shm(&[sub], &path);
        let err = text(&out.stderr);
        let want = if sub == "stat" { 3 } else { 1 };
        assert_eq!(out.status.code(), Some(want), "{sub}: {err}");
        assert!(
            err.contains(&format!("writer process {pid} is gone")),
            "{sub}: {err}"
        );
    }
    w.wait().unwrap();
}

#[test]
fn rm_removes_only_what_no_writer_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let rm = |args: &[&str], p: &Path| run(bin().args(["shm", "rm"]).args(args).arg(p));

    let mut w = live_writer(&path, 60);
    let out = rm(&[], &path);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{} is in use by a live writer (pid {})",
            path.display(),
            w.id()
        )),
        "{err}"
    );
    let out = rm(&["--force"], &path);
    assert!(
        !out.status.success(),
        "--force never takes a live writer's file"
    );
    assert!(path.exists());
    w.kill().unwrap();
    w.wait().unwrap();
    let out = rm(&[], &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("died without closing it"));
    assert!(!path.exists());

    assert!(shm(&["write-synthetic", "--seconds", "0.2"], &path)
        .status
        .success());
    let out = rm(&[], &path);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("its writer closed it at 20"));
    let out = rm(&[], &path);
    assert!(text(&out.stderr).contains("no such shm file"));

    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    let out = rm(&[], &junk);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not a tickwire shm file (magic 0x0707070707070707); not removed (--force removes it anyway)"),
        "{}",
        text(&out.stderr)
    );
    assert!(junk.exists());
    let out = rm(&["--force"], &junk);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!junk.exists());
}

/// The unshare command that runs a program in a new PID namespace with its own `/proc`, or why
/// this machine cannot.
fn pid_namespace() -> Result<Vec<String>, String> {
    let root = text(
        &Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("cannot run `id -u`: {e}"))?
            .stdout,
    );
    let mut args: Vec<String> = vec!["unshare".into()];
    if root.trim() != "0" {
        args.push("--user".into());
        args.push("--map-root-user".into());
    }
    args.extend(["--pid", "--fork", "--mount-proc"].map(String::from));
    let probe = Command::new(&args[0])
        .args(&args[1..])
        .args(["sh", "-c", "echo $$"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if !probe.status.success() || text(&probe.stdout).trim() != "1" {
        return Err(format!(
            "{} does not give a new PID namespace here: {}",
            args.join(" "),
            text(&probe.stderr).trim()
        ));
    }
    Ok(args)
}

#[test]
fn a_reader_in_another_pid_namespace_sees_the_writer_live_and_then_gone() {
    let ns = match pid_namespace() {
        Ok(ns) => ns,
        Err(why) => {
            // Straight to the process's stdout, past the test harness's capture of println!, so
            // the skip shows in a normal `cargo test` run instead of passing silently.
            let _ = writeln!(
                std::io::stdout().lock(),
                "SKIPPED: cross-namespace liveness not tested: {why}"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticks");
    let in_ns = |prog: &Path| {
        let mut c = Command::new(&ns[0]);
        c.args(&ns[1..]).arg(prog);
        c
    };
    let tickwire = Path::new(env!("CARGO_BIN_EXE_tickwire"));
    let py = python::python();
    let mut w = live_writer(&path, 60);
    // In the namespace the writer's pid names nothing (or another process): only the file can say.
    let out = run(in_ns(tickwire).args(["shm", "stat", "--path"]).arg(&path));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("writer status   live"),
        "{}",
        text(&out.stdout)
    );
    let out = run(in_ns(tickwire)
        .args(["shm", "tail", "--count", "5", "--path"])
        .arg(&path));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 5);
    let out = run(in_ns(&py)
        .arg(script())
        .args(["--count", "5", "--path"])
        .arg(&path));
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 5);

    kill_leaving_zombie(&mut w);
    let out = run(in_ns(tickwire).args(["shm", "stat", "--path"]).arg(&path));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    w.wait().unwrap();
}

/// The Python reader (`shm/python/tickwire_shm.py`, run by the tests' venv): the same sentences as
/// the Rust tools, raised as its own `ShmError`, never a traceback or a hang.
#[test]
fn the_python_reader_names_bad_files_and_judges_liveness_by_the_lock() {
    let py = python::python();
    let dir = tempfile::tempdir().unwrap();
    let fifo = mkfifo(dir.path());
    let path = dir.path().join("ticks");
    assert!(shm(
        &["write-synthetic", "--seconds", "0.2", "--symbols", "2"],
        &path
    )
    .status
    .success());
    let len = std::fs::metadata(&path).unwrap().len();
    let huge = dir.path().join("huge");
    std::fs::copy(&path, &huge).unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&huge).unwrap();
    f.seek(SeekFrom::Start(24)).unwrap();
    f.write_all(&(1u64 << 62).to_le_bytes()).unwrap();
    drop(f);

    let cases = [
        (
            fifo.clone(),
            format!("{} is a FIFO, not a tickwire shm file", fifo.display()),
        ),
        (
            dir.path().to_owned(),
            format!(
                "{} is a directory, not a tickwire shm file",
                dir.path().display()
            ),
        ),
        (
            huge.clone(),
            format!(
                "{}: header's ring_capacity 4611686018427387904 and symbol_capacity 2 need a file \
                 of {} bytes but the file has {len}",
                huge.display(),
                12288u128 + (1u128 << 62) * 448
            ),
        ),
    ];
    for (p, want) in &cases {
        // As a script: one line on stderr, exit 1.
        let out = run(Command::new(&py).arg(script()).arg("--path").arg(p));
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), format!("tickwire_shm: error: {want}\n"));
        // As a module: its own exception class, with the same sentence.
        let prog = "import sys; sys.path.insert(0, sys.argv[1]); import tickwire_shm as t\n\
                    try:\n    t.Reader(sys.argv[2], require_live=False)\n\
                    except t.ShmError as e:\n    print(e)";
        let out = run(Command::new(&py)
            .args(["-c", prog])
            .arg(script().parent().unwrap())
            .arg(p));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("{want}\n"));
    }

    // Killed, not reaped: /proc/<pid> still there, heartbeat fresh; the lock says gone.
    let mut w = live_writer(&path, 60);
    kill_leaving_zombie(&mut w);
    let out = run(Command::new(&py).arg(script()).arg("--path").arg(&path));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "tickwire_shm: error: {}: no live writer: writer process {} is gone (it did not close \
             the file)\n",
            path.display(),
            w.id()
        )
    );
    w.wait().unwrap();
}

/// A FIFO named `fifo` in `dir`.
fn mkfifo(dir: &Path) -> PathBuf {
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    fifo
}
