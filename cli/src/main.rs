//! kiln: the command-line client of the kiln model registry.

mod client;
mod commands;
mod error;
mod local_files;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_core::ModelRef;

use crate::client::ApiClient;
use crate::error::CliError;

/// kiln: push, pull and browse models in a kiln registry.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    /// The registry's URL
    #[arg(
        long,
        global = true,
        env = "KILN_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

fn parse_ref(value: &str) -> Result<ModelRef, String> {
    value
        .parse()
        .map_err(|e: kiln_core::CoreError| e.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Upload a file or a whole folder (every file, paths kept) as a new version
    Push {
        /// The file or folder to push
        path: PathBuf,
        /// Where to push: NAMESPACE/MODEL:VERSION
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// Set the model's description
        #[arg(long)]
        description: Option<String>,
        /// Set the model's tags (repeat for several); replaces the existing tags
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Bytes per upload request (rounded to the server's part size; default 64 MiB)
        #[arg(long)]
        chunk_size: Option<i64>,
        /// Print the committed version as JSON
        #[arg(long)]
        json: bool,
    },
    /// Download a version's files, checking every digest
    Pull {
        /// What to pull: NAMESPACE/MODEL:VERSION
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// The folder to write into
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Pull only this file (repeat for several)
        #[arg(long = "file")]
        files: Vec<String>,
    },
    /// List models (all, or one namespace's), or one model's versions
    Ls {
        /// NAMESPACE or NAMESPACE/MODEL
        #[arg(value_parser = parse_ref)]
        reference: Option<ModelRef>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show a model or one version with its files
    Show {
        /// NAMESPACE/MODEL or NAMESPACE/MODEL:VERSION
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Delete a version (recorded in the server's audit log)
    Delete {
        /// NAMESPACE/MODEL:VERSION
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// Confirm the deletion
        #[arg(long)]
        yes: bool,
    },
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let client = ApiClient::new(&cli.server)?;
    match cli.command {
        Command::Push {
            path,
            reference,
            description,
            tags,
            chunk_size,
            json,
        } => {
            let options = commands::push::PushOptions {
                source: path,
                reference,
                description,
                tags,
                chunk_size,
                json,
            };
            commands::push::run(&client, options).await
        }
        Command::Pull {
            reference,
            output,
            files,
        } => {
            commands::pull::run(
                &client,
                commands::pull::PullOptions {
                    reference,
                    output,
                    files,
                },
            )
            .await
        }
        Command::Ls { reference, json } => commands::browse::ls(&client, reference, json).await,
        Command::Show { reference, json } => commands::browse::show(&client, reference, json).await,
        Command::Delete { reference, yes } => commands::delete::run(&client, reference, yes).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
