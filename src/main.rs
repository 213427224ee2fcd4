//! The `camrtc` command line. `anyhow` lives here only: library errors are typed.

use anyhow::Context;
use camrtc::config::{Config, DEFAULT_CONFIG_TOML};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "camrtc",
    version,
    about = "Stream a camera and microphone to browsers over WebRTC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon with a configuration file.
    Run {
        #[arg(long, default_value = "/etc/camrtc/camrtc.toml")]
        config: PathBuf,
    },
    /// Stream a test pattern and tone with no camera, no microphone and no authentication.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Validate a configuration file and exit.
    CheckConfig { path: PathBuf },
    /// Print the built-in default configuration (the documented reference).
    PrintDefaultConfig,
    /// Read a token on standard input and print the digest to put in auth.tokens.
    HashToken,
    /// Read a password on standard input and print the hash to put in auth.users.
    HashPassword,
    /// List cameras (formats, sizes, frame rates, controls) and sound cards, to fill in the config.
    Devices,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::PrintDefaultConfig => {
            print!("{DEFAULT_CONFIG_TOML}");
            Ok(())
        }
        Command::HashToken => {
            let token = read_secret("token")?.trim().to_owned();
            anyhow::ensure!(token.len() >= 16, "a token needs at least 16 characters");
            println!("{}", camrtc::auth::token_digest_string(&token));
            Ok(())
        }
        Command::HashPassword => {
            let password = read_secret("password")?;
            anyhow::ensure!(
                password.chars().count() >= 8,
                "a password needs at least 8 characters"
            );
            println!("{}", camrtc::auth::hash_password(&password));
            Ok(())
        }
        Command::Devices => {
            print!("{}", camrtc::source::devices::report());
            Ok(())
        }
        Command::CheckConfig { path } => {
            Config::load(&path).with_context(|| format!("{} is not valid", path.display()))?;
            println!("{}: ok", path.display());
            Ok(())
        }
        Command::Run { config } => {
            let config = Config::load(&config)
                .with_context(|| format!("cannot use {}", config.display()))?;
            serve(config, false)
        }
        Command::Demo { listen } => serve(Config::demo(listen), true),
    }
}

/// One line from standard input without its line ending (inner spaces are part of a secret).
fn read_secret(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).with_context(|| format!("cannot read the {what}"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMRTC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // Under systemd, log to the journal natively: priorities (so `journalctl -p warning` works)
    // and the fields as searchable journal fields, without a second timestamp.
    if stderr_is_the_journal() {
        match tracing_journald::layer() {
            Ok(journal) => {
                registry.with(journal.with_syslog_identifier("camrtc".to_owned())).init();
                return;
            }
            Err(error) => eprintln!("camrtc: cannot log to journald ({error}); using stderr"),
        }
    }
    registry
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes are noise in journald and log files.
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
}

/// systemd sets JOURNAL_STREAM to the device and inode of the journal stream it connected;
/// only if stderr still is that stream (not redirected by a wrapper) do we talk to the journal.
fn stderr_is_the_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else { return false };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    let Ok(meta) = std::fs::File::from(fd).metadata() else { return false };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    init_tracing();
    let runtime = camrtc::app::runtime(&config).context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        camrtc::app::run(config, listener, shutdown, |address| {
            tracing::info!(%address, "listening");
            if demo {
                println!("camrtc demo: open http://{address}/ in a browser (Ctrl-C to stop)");
            }
        })
        .await
        .context("camrtc could not run")
    })
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
