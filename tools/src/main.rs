//! `tickwire`: one binary, subcommands per job. `tickwire --help` lists them.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tickwire::config::{self, Config};
use tickwire::gateway_cmd::{self, DemoArgs, MockArgs, ServeArgs};
use tickwire::logging::LogFormat;
use tickwire::shm_cmd::{self, ShmCmd};

#[derive(Parser, Debug)]
#[command(
    name = "tickwire",
    version,
    about = "Market-data gateway: broker feeds in, shared memory and WebSocket out."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log level or filter (`info`, `debug`, `tickwire_io=debug,info`); `RUST_LOG` wins when set.
    #[arg(long, global = true)]
    log_level: Option<String>,
    /// Log lines as human-readable text or as JSON objects (one a line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// A mock broker (Kite by default, `--broker upstox`) and the gateway wired to it: live ticks, no
    /// credentials.
    Demo(DemoArgs),
    /// The gateway against a real broker feed.
    Serve(Box<ServeArgs>),
    /// A mock broker speaking a broker's real protocol from a simulated market (a test peer).
    MockBroker(MockArgs),
    /// Benchmarks that run the real threads: `bench e2e`.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Shared-memory tools: synthetic writer, tail, stat, rm.
    #[command(subcommand)]
    Shm(ShmCmd),
    /// Config file tools: `config check FILE`.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// API keys: add (prints a new key once), list, revoke; the file holds only Argon2id hashes.
    #[command(subcommand)]
    Keys(tickwire::keys_cmd::KeysCmd),
    /// The raw-frame journal: `journal ls DIR` (segments), `journal stat DIR` (totals, gaps,
    /// torn tails).
    #[command(subcommand)]
    Journal(tickwire::journal_cmd::JournalCmd),
    /// A journal back through the parsers and router into shm and the WebSocket gateway, as if
    /// live: `replay --journal DIR [--from T] [--to T] [--speed 1|10|max]`.
    Replay(Box<tickwire::replay_cmd::ReplayArgs>),
    /// A journal's ticks into a Parquet or CSV file, one row per tick: `export --journal DIR
    /// --format parquet|csv --out PATH [--symbols A,B] [--from T] [--to T]`.
    Export(tickwire::export_cmd::ExportArgs),
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Validates a config file (syntax, keys, values, each feed's credentials found in the file,
    /// the environment or the credentials file) without starting anything.
    Check {
        /// The config file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCmd {
    /// Mock broker → gateway → shm reader and WebSocket clients: latency percentiles and throughput.
    E2e(tickwire::bench_cmd::E2eArgs),
    /// Mock broker → gateway → many WebSocket clients (1,000 by default): messages/s delivered,
    /// latency percentiles, gateway CPU per million messages, with `--stalled P` % never reading.
    Fanout(tickwire::bench_fanout::FanoutArgs),
    /// Mock market at 200,000 updates/s → a `tickwire serve` child → 500 clients subscribing and
    /// unsubscribing at random for 5 minutes: the gateway's memory over time and every error
    /// (bounded; run by hand, not part of the tests).
    Soak(tickwire::bench_soak::SoakArgs),
}

fn main() -> ExitCode {
    // Before parsing: the config file's `[log]` configures logging, and it and the credentials
    // file supply values clap reads (variables, defaults of required values).
    let args: Vec<String> = std::env::args().collect();
    let cfg = match config::flag_value(&args, "config") {
        Some(p) => match config::load(Path::new(&p)) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("tickwire: error: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let secrets = tickwire::secrets::flag(&args)
        .map(PathBuf::from)
        .or_else(|| cfg.as_ref().and_then(|c| c.credentials_file.clone()));
    if let Some(path) = secrets {
        match tickwire::secrets::load(&path) {
            Ok(None) => {}
            Ok(Some(warning)) => eprintln!("tickwire: warning: {warning}"),
            Err(e) => {
                eprintln!("tickwire: error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Cmd::Serve(a), Some(("serve", m))) = (&mut cli.cmd, matches.subcommand()) {
        a.explicit = config::explicit(m);
        // A reload keeps what the command line gave (a flag wins over the credentials file).
        a.secrets_given_as_flags = gateway_cmd::secrets_given_as_flags(m);
        if let Some(c) = &cfg {
            config::apply(c, a);
        }
        let ring_given = a.explicit.contains("ring_capacity")
            || cfg.as_ref().is_some_and(|c| c.shm.ring_capacity.is_some());
        a.engine.size_ring_for_sink(ring_given);
    }
    if let (Cmd::Demo(a), Some(("demo", m))) = (&mut cli.cmd, matches.subcommand()) {
        let ring_given = matches!(
            m.value_source("ring_capacity"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        a.engine.size_ring_for_sink(ring_given);
    }
    let file_log = cfg.map(|c: Config| c.log).unwrap_or_default();
    let level = cli.log_level.clone().or(file_log.level);
    let format = match matches.value_source("log_format") {
        Some(ValueSource::CommandLine) => cli.log_format,
        _ => file_log.format.unwrap_or(cli.log_format),
    };
    let _log = match tickwire::logging::init(level.as_deref(), format) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("tickwire: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = tickwire::reload::install_sighup() {
        eprintln!("tickwire: cannot install SIGHUP handler: {e}");
        return ExitCode::FAILURE;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl-C ends the process at once, whatever it is doing; the first asks for a
        // clean stop.
        let second = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone());
        if let Err(e) = second.and_then(|_| signal_hook::flag::register(sig, stop.clone())) {
            eprintln!("tickwire: cannot install signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    shutdown_watchdog(stop.clone());
    let res = match cli.cmd {
        Cmd::Shm(c) => shm_cmd::run(c, &stop),
        Cmd::Keys(c) => tickwire::keys_cmd::run(c),
        Cmd::Journal(c) => tickwire::journal_cmd::run(c),
        Cmd::Replay(a) => tickwire::replay_cmd::run(*a, &stop),
        Cmd::Export(a) => tickwire::export_cmd::run(a),
        Cmd::Bench(BenchCmd::E2e(a)) => tickwire::bench_cmd::e2e(a, &stop),
        Cmd::Bench(BenchCmd::Fanout(a)) => tickwire::bench_fanout::fanout(a, &stop),
        Cmd::Bench(BenchCmd::Soak(a)) => tickwire::bench_soak::soak(a, &stop),
        Cmd::Demo(a) => gateway_cmd::demo(a, &stop),
        Cmd::Serve(a) => gateway_cmd::serve(*a, &stop),
        Cmd::MockBroker(a) => gateway_cmd::mock_broker(a, &stop),
        Cmd::Config(ConfigCmd::Check { file }) => {
            config::check(&file).map(|summary| println!("tickwire: {summary}"))
        }
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Said on stderr directly too: the log queue may not be drained before exit, and a
            // fatal error must reach the operator.
            eprintln!("tickwire: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A clean stop that takes longer than this ends the process anyway (a thread stuck in a write
/// to a peer that never reads must not keep a Ctrl-C'd process alive).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn shutdown_watchdog(stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("tickwire-shutdown".into())
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            std::thread::sleep(SHUTDOWN_GRACE);
            tracing::error!(
                "still stopping after {} s; exiting now",
                SHUTDOWN_GRACE.as_secs()
            );
            std::process::exit(1);
        });
}
