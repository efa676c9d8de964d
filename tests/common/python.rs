//! The Python the tests run: a venv under `target/pyenv`, made on first use from the machine's
//! `python3` and `tests/python/requirements.txt` (the README's client, the brokers' official SDKs),
//! and one under `target/pyenv-openalgo` from `tests/python/openalgo-requirements.txt` (OpenAlgo's
//! SDK needs a `websocket-client` newer than the broker SDKs allow, so it cannot share theirs).
//! Made once per requirements file (a stamp holds its text) under a file lock, so test binaries
//! running at once do not race. A failure to make it fails the test that needed it, loudly: a test
//! never passes by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/` of this build (the test binary lives in `target/<profile>/deps/`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<binary>")
        .to_path_buf()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn setup(name: &str, requirements: &str) -> PathBuf {
    let req = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/python")
        .join(requirements);
    let want = std::fs::read_to_string(&req).expect("tests/python requirements file");
    let venv = target_dir().join(name);
    let py = venv.join("bin/python");
    let stamp = venv.join(".requirements");
    std::fs::create_dir_all(target_dir()).expect("target dir");
    let lock = std::fs::File::create(target_dir().join(format!("{name}.lock"))).expect("lock file");
    lock.lock().expect("lock the venv");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        eprintln!("tests: making the Python venv {} (once)", venv.display());
        run(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
            "python3 -m venv",
        );
        run(
            Command::new(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&req),
            "pip install -r tests/python/<requirements>",
        );
        std::fs::write(&stamp, &want).expect("venv stamp");
    }
    py
}

/// The venv's `python`, made if needed (see the module docs).
pub fn python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| setup("pyenv", "requirements.txt"))
        .clone()
}

/// The OpenAlgo SDK venv's `python`, made if needed.
pub fn openalgo_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| setup("pyenv-openalgo", "openalgo-requirements.txt"))
        .clone()
}

/// Runs `tests/python/<script>` with `args` in the venv and asserts it exits 0 having printed `OK`
/// (the scripts' convention); returns its stdout for further checks.
pub fn check_script(script: &str, args: &[&str]) -> String {
    check_script_in(python(), script, args)
}

/// As [`check_script`], with the given venv's `python`.
pub fn check_script_in(python: PathBuf, script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/python")
        .join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .expect("python");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("OK"),
        "{script} {args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
