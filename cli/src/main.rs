//! kiln: the command-line client of the kiln model registry.

mod client;
mod commands;
mod credentials;
use kiln_cli::error;
mod local_files;
use kiln_cli::manifest_trust;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln_core::api::{Role, Visibility};
use kiln_core::{AliasName, ModelRef, NamespaceName, VersionName};

use crate::client::ApiClient;
use crate::error::CliError;

/// kiln: push, pull and browse models in a kiln registry.
#[derive(Parser)]
#[command(version, propagate_version = true, after_help = error::EXIT_CODES)]
struct Cli {
    /// The registry's URL
    #[arg(
        long,
        global = true,
        env = "KILN_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Print JSON on stdout instead of text, for scripts (every command; errors stay text on stderr)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// `NAME=NUMBER`, as `--tolerance int8=0.1` takes it.
fn parse_tolerance(text: &str) -> Result<(String, f64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: write VARIANT=NUMBER, e.g. int8=0.1"))?;
    let value: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number (e.g. int8=0.1)"))?;
    Ok((name.to_owned(), value))
}

pub(crate) fn parse_ref(value: &str) -> Result<ModelRef, String> {
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
        /// Files hashed and uploaded at once, each over its own connection
        #[arg(short, long, default_value_t = 4, env = "KILN_JOBS", value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// Variants the server makes: fp32, fused, fp16, int8, int8-dynamic, pruned-N, int4[-bN][-asym][-qdq],
        /// int8-bN[-asym] (comma-separated; default fp32,fp16,int8, and for a decoder also int8-b128,int4;
        /// no fp32 for a 16-bit model), or `none` to store (and convert) without optimizing
        #[arg(long, value_delimiter = ',')]
        variants: Option<Vec<String>>,
        /// Replace a variant's relative L2 tolerance, e.g. --tolerance int8=0.1 (repeat for several)
        #[arg(long = "tolerance", value_parser = parse_tolerance)]
        tolerances: Vec<(String, f64)>,
        /// Batch sizes runners benchmark the variants at (comma-separated, up to 4; default 1,8)
        #[arg(long, value_delimiter = ',')]
        benchmark_batch_sizes: Option<Vec<u32>>,
        /// Sequence lengths runners benchmark models with token inputs at (comma-separated, up to 4;
        /// default 128)
        #[arg(long, value_delimiter = ',')]
        benchmark_sequence_lengths: Option<Vec<u32>>,
        /// Where the version came from: a JSON file (`-` for stdin) with parents (`NS/MODEL:VERSION` and a
        /// role), datasets (a kiln version or a URI), the training run, the producing tool and
        /// hyperparameters, as the API takes it (docs/cli.md, "Lineage")
        #[arg(long, value_name = "FILE")]
        lineage: Option<PathBuf>,
    },
    /// Download a version's files, checking every digest. By alias (NAMESPACE/MODEL@ALIAS) the alias's
    /// signed manifest is verified first and every file is checked against the digests it lists
    Pull {
        /// What to pull: NAMESPACE/MODEL:VERSION or NAMESPACE/MODEL@ALIAS
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// The folder to write into
        #[arg(short, long, default_value = ".")]
        output: PathBuf,
        /// Pull only this file (repeat for several)
        #[arg(long = "file")]
        files: Vec<String>,
        /// Pull a variant kiln produced (e.g. `onnx`) instead of the files pushed; the version's
        /// config.json, if it has one, comes beside the variant's model (unless --file picks files)
        #[arg(long)]
        variant: Option<String>,
        /// Files downloaded at once, each over its own connection
        #[arg(short, long, default_value_t = 4, env = "KILN_JOBS", value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// For pulls by alias: the JWK Set to verify the manifest with (URL or file; default: the server's)
        #[arg(long)]
        jwks: Option<String>,
        /// For pulls by alias: the file keeping the highest manifest sequence seen per alias (default:
        /// manifest-state.json beside the CLI's credentials)
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// List models (all, or one namespace's; filtered by the server), or one model's versions
    #[command(visible_alias = "list")]
    Ls {
        /// NAMESPACE or NAMESPACE/MODEL
        #[arg(value_parser = parse_ref)]
        reference: Option<ModelRef>,
        /// Only models carrying this tag
        #[arg(long)]
        tag: Option<String>,
        /// Only models with this text in their name or description
        #[arg(long)]
        search: Option<String>,
        /// Only models whose name starts with this
        #[arg(long)]
        prefix: Option<String>,
        /// Only models with a deployable variant of this kind (onnx, fp16, int8, ...)
        #[arg(long)]
        has_variant: Option<String>,
        /// At most this many models
        #[arg(long, default_value_t = 100, conflicts_with = "all")]
        limit: usize,
        /// Every model, however many (page after page)
        #[arg(long)]
        all: bool,
    },
    /// Print the signed deployment manifest of a version or an alias (the document, or the JWS with --jws)
    Manifest {
        /// NAMESPACE/MODEL:VERSION or NAMESPACE/MODEL@ALIAS
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// Print the compact JWS instead of the document
        #[arg(long)]
        jws: bool,
        /// An earlier manifest, by its sequence number (default: the newest)
        #[arg(long)]
        sequence: Option<i64>,
    },
    /// Verify a manifest (of a version, an alias, or in a JWS file): signature, expiry, that it names what
    /// was asked for, and that its sequence never goes backwards (a rollback) for that alias or version
    Verify {
        /// NAMESPACE/MODEL:VERSION, NAMESPACE/MODEL@ALIAS, or a file holding a compact JWS
        target: String,
        /// The JWK Set to verify with: a URL or a file (default: the server's /.well-known/jwks.json)
        #[arg(long)]
        jwks: Option<String>,
        /// The file keeping the highest sequence seen per alias and version (default:
        /// manifest-state.json beside the CLI's credentials)
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// The benchmark runners and their state (idle, busy, lost)
    Runners,
    /// Aliases: movable names for versions (acme/sentiment@production)
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Distill a version into a student with fewer layers, trained by a runner (docs/distillation.md)
    #[command(
        after_help = "Follow it with `kiln show TEACHER` (its distillations and progress) or --wait."
    )]
    Distill(commands::distill::DistillArgs),
    /// Show a model or one version with its files
    Show {
        /// NAMESPACE/MODEL or NAMESPACE/MODEL:VERSION
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
    },
    /// Store an API token for this server (checked first), from --token or made from a password
    Login {
        /// An API token (kiln_...), or - to read it from stdin
        #[arg(long, conflicts_with = "username")]
        token: Option<String>,
        /// Sign in with a password (read from stdin) and store a new 90-day token
        #[arg(long)]
        username: Option<String>,
    },
    /// Forget the token stored for this server
    Logout,
    /// Show who the stored token (or KILN_TOKEN) signs in as
    Whoami,
    /// Create, list and revoke API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create users (administrators)
    #[command(subcommand)]
    User(UserCommand),
    /// Create namespaces and manage their members
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// Make a model public or private
    Visibility {
        /// NAMESPACE/MODEL
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// public or private
        #[arg(value_parser = commands::namespace::parse_visibility)]
        visibility: Visibility,
    },
    /// What a namespace holds: bytes per model, the bytes deleting each would free, and its quota
    /// (without NAMESPACE: every namespace you are a member of)
    Usage { namespace: Option<NamespaceName> },
    /// Which versions a namespace or model keeps; applied by the server's scheduled collection
    #[command(subcommand)]
    Retention(commands::storage::RetentionCommand),
    /// Garbage collection, the store check and quotas (administrators)
    #[command(subcommand)]
    Admin(commands::storage::AdminCommand),
    /// Webhook subscriptions: events of a namespace or model POSTed, signed, to a URL (namespace admins)
    #[command(subcommand)]
    Webhook(commands::webhook::WebhookCommand),
    /// Delete a version, or a model with all its versions (recorded in the server's audit log)
    #[command(visible_alias = "rm")]
    Delete {
        /// NAMESPACE/MODEL:VERSION, or NAMESPACE/MODEL for the whole model
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        /// Confirm the deletion
        #[arg(long)]
        yes: bool,
        /// Delete a model even though aliases name its versions (the aliases go too)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum AliasCommand {
    /// Point ALIAS at VERSION (which must be ready); publishes the alias's next signed manifest
    Set {
        /// NAMESPACE/MODEL
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        alias: AliasName,
        /// The version to name (it must be ready)
        #[arg(value_name = "VERSION")]
        target: VersionName,
    },
    /// A model's aliases and the versions they name
    #[command(visible_alias = "list")]
    Ls {
        /// NAMESPACE/MODEL
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
    },
    /// Every move of an alias: who, when, from which version to which
    History {
        /// NAMESPACE/MODEL
        #[arg(value_parser = parse_ref)]
        reference: ModelRef,
        alias: AliasName,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once
    Create {
        /// A name to recognise it by
        name: String,
        /// read, write, admin (optionally :NAMESPACE) or runner; repeat for several (default: write)
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Days until it expires (default: never)
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List your tokens
    #[command(visible_alias = "list")]
    Ls,
    /// Revoke a token by id
    Revoke { id: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with a personal namespace of the same name
    Create {
        name: NamespaceName,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
        /// Read a password for the user from stdin (12+ characters)
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum NamespaceCommand {
    /// Create an organisation namespace (administrators); you become its admin
    Create { name: NamespaceName },
    /// List namespaces
    #[command(visible_alias = "list")]
    Ls,
    /// List a namespace's members
    Members { namespace: NamespaceName },
    /// Add a member, or change their role (reader, writer, admin)
    AddMember {
        namespace: NamespaceName,
        user: String,
        #[arg(value_parser = commands::namespace::parse_role)]
        role: Role,
    },
    /// Remove a member
    RemoveMember {
        namespace: NamespaceName,
        user: String,
    },
    /// Show a namespace's settings, or change them (namespace admins)
    Settings {
        namespace: NamespaceName,
        /// Store pickles the safety scan refuses, flagged and never loaded, instead of refusing the
        /// version (true|false; off by default)
        #[arg(long)]
        store_unsafe_pickles: Option<bool>,
    },
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let server = cli.server.trim_end_matches('/').to_owned();
    let client = ApiClient::new(&server, credentials::token_for(&server)?)?;
    let json = cli.json;
    match cli.command {
        Command::Push {
            path,
            reference,
            description,
            tags,
            chunk_size,
            jobs,
            variants,
            tolerances,
            benchmark_batch_sizes,
            benchmark_sequence_lengths,
            lineage,
        } => {
            let variants = variants.map(variants_asked).transpose()?;
            let pipeline = kiln_core::api::PipelineOptions {
                variants,
                tolerances: (!tolerances.is_empty()).then(|| tolerances.into_iter().collect()),
                benchmark_batch_sizes,
                benchmark_sequence_lengths,
            };
            let pipeline =
                (pipeline != kiln_core::api::PipelineOptions::default()).then_some(pipeline);
            let options = commands::push::PushOptions {
                source: path,
                reference,
                description,
                tags,
                chunk_size,
                jobs: usize::from(jobs),
                json,
                pipeline,
                lineage,
            };
            commands::push::run(&client, options).await
        }
        Command::Pull {
            reference,
            output,
            files,
            variant,
            jobs,
            jwks,
            state,
        } => {
            let options = commands::pull::PullOptions {
                reference,
                output,
                files,
                variant,
                json,
                jobs: usize::from(jobs),
            };
            let trust = commands::manifest::Trust {
                jwks: jwks.as_deref(),
                state,
            };
            commands::pull::run(&client, options, trust).await
        }
        Command::Ls {
            reference,
            tag,
            search,
            prefix,
            has_variant,
            limit,
            all,
        } => {
            let filter = client::ModelFilter {
                tag,
                search,
                prefix,
                has_variant,
            };
            let limit = (!all).then_some(limit);
            commands::browse::ls(&client, reference, &filter, limit, json).await
        }
        Command::Show { reference } => commands::browse::show(&client, reference, json).await,
        Command::Distill(args) => commands::distill::command(&client, args, json).await,
        Command::Usage { namespace } => commands::storage::usage(&client, namespace, json).await,
        Command::Retention(command) => {
            commands::storage::run_retention(&client, command, json).await
        }
        Command::Admin(command) => commands::storage::run_admin(&client, command, json).await,
        Command::Webhook(command) => commands::webhook::run(&client, command, json).await,
        Command::Manifest {
            reference,
            jws,
            sequence,
        } => commands::manifest::show(&client, reference, jws, sequence, json).await,
        Command::Verify {
            target,
            jwks,
            state,
        } => {
            let trust = commands::manifest::Trust {
                jwks: jwks.as_deref(),
                state,
            };
            commands::manifest::verify(&client, &target, trust, json).await
        }
        Command::Runners => commands::browse::runners(&client, json).await,
        Command::Alias(command) => run_alias(&client, command, json).await,
        Command::Delete {
            reference,
            yes,
            force,
        } => commands::delete::run(&client, reference, yes, force, json).await,
        Command::Login { token, username } => {
            commands::account::login(&client, token, username, json).await
        }
        Command::Logout => commands::account::logout(&client, json),
        Command::Whoami => commands::account::whoami(&client, json).await,
        Command::Token(command) => run_token(&client, command, json).await,
        Command::User(UserCommand::Create {
            name,
            admin,
            password_stdin,
        }) => commands::account::user_create(&client, name, admin, password_stdin, json).await,
        Command::Namespace(command) => run_namespace(&client, command, json).await,
        Command::Visibility {
            reference,
            visibility,
        } => commands::namespace::set_visibility(&client, reference, visibility, json).await,
    }
}

async fn run_alias(client: &ApiClient, command: AliasCommand, json: bool) -> Result<(), CliError> {
    match command {
        AliasCommand::Set {
            reference,
            alias,
            target,
        } => commands::alias::set(client, reference, alias, target, json).await,
        AliasCommand::Ls { reference } => commands::alias::ls(client, reference, json).await,
        AliasCommand::History { reference, alias } => {
            commands::alias::history(client, reference, alias, json).await
        }
    }
}

async fn run_token(client: &ApiClient, command: TokenCommand, json: bool) -> Result<(), CliError> {
    match command {
        TokenCommand::Create {
            name,
            scopes,
            expires_days,
        } => commands::account::token_create(client, name, scopes, expires_days, json).await,
        TokenCommand::Ls => commands::account::token_list(client, json).await,
        TokenCommand::Revoke { id } => commands::account::token_revoke(client, id, json).await,
    }
}

async fn run_namespace(
    client: &ApiClient,
    command: NamespaceCommand,
    json: bool,
) -> Result<(), CliError> {
    use commands::namespace;
    match command {
        NamespaceCommand::Create { name } => namespace::create(client, name, json).await,
        NamespaceCommand::Ls => namespace::list(client, json).await,
        NamespaceCommand::Members { namespace } => {
            namespace::members(client, namespace, json).await
        }
        NamespaceCommand::AddMember {
            namespace,
            user,
            role,
        } => namespace::add_member(client, namespace, user, role, json).await,
        NamespaceCommand::RemoveMember { namespace, user } => {
            namespace::remove_member(client, namespace, user, json).await
        }
        NamespaceCommand::Settings {
            namespace,
            store_unsafe_pickles,
        } => namespace::settings(client, namespace, store_unsafe_pickles, json).await,
    }
}

/// `kiln ... | head` may close stdout before kiln is done: println! then panics with a broken pipe. End
/// quietly instead, with the status a shell gives a process stopped by SIGPIPE. (The signal itself stays
/// ignored, as Rust sets it: a connection the server resets must be an error the CLI explains, not a
/// signal that kills it.)
fn end_quietly_on_a_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}

fn main() -> ExitCode {
    end_quietly_on_a_closed_stdout();
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

/// `--variants`: names, or `none` (or an empty list) for no optimized variants at all.
fn variants_asked(names: Vec<String>) -> Result<Vec<String>, CliError> {
    let names: Vec<String> = names
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    match names.as_slice() {
        [only] if only == "none" => Ok(Vec::new()),
        several if several.iter().any(|n| n == "none") => Err(CliError::Usage(
            "--variants none cannot be combined with variant names".to_owned(),
        )),
        _ => Ok(names),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
