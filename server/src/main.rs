use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_server::config::Settings;
use kiln_server::startup::Application;

/// kiln-server: the kiln model registry.
///
/// With no configuration it serves on 127.0.0.1:8080 from ./kiln-data (SQLite + local files).
/// Settings come from ./kiln.toml (or --config) and KILN_* environment variables; see docs/operations.md.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Read settings from this TOML file instead of ./kiln.toml
    #[arg(long, global = true, env = "KILN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry (the default)
    Serve,
    /// Print the OpenAPI document and exit
    Openapi,
    /// Run one pipeline step on files (a JSON request on stdin, the answer on stdout): how the server
    /// opens pushed models in a child process with memory and time limits
    #[command(hide = true)]
    PipelineStep,
    /// Run the embedded CPU runner (started by kiln-server itself, which passes what it needs)
    #[command(hide = true)]
    EmbeddedRunner,
    /// Manage the manifest signing keys
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a signing key: it signs manifests from the next start of each server; the older keys stay
    /// published, so manifests they signed keep verifying
    Rotate,
}

fn main() -> ExitCode {
    kiln_server::startup::allocator::bound_arenas();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::PipelineStep) => return kiln_server::pipeline::step::serve_stdio(),
        Some(Command::EmbeddedRunner) => return kiln_server::startup::embedded_runner::run_child(),
        _ => {}
    }
    if let Some(Command::Openapi) = cli.command {
        let spec = kiln_server::http::openapi();
        println!(
            "{}",
            spec.to_pretty_json()
                .expect("the OpenAPI document serializes")
        );
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("kiln-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Keys {
        action: KeysCommand::Rotate,
    }) = cli.command
    {
        return match kiln_server::manifest::keys::create_key(&settings.manifest_keys_dir) {
            Ok(kid) => {
                println!(
                    "kiln-server: added manifest signing key {kid} in {}; restart the servers to sign with it \
                     (earlier keys stay published)",
                    settings.manifest_keys_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kiln-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let telemetry = match kiln_server::telemetry::init(settings.log_json, settings.traces.as_ref())
    {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("kiln-server: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.chain().to_string())?;
        app.run().await.map_err(|e| e.to_string())
    });
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln-server: {e}");
            ExitCode::FAILURE
        }
    }
}
