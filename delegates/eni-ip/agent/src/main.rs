//! `eni-ipamd`: the ENI-IP node agent. It keeps the node's warm pool of ENI addresses as the
//! AWS VPC CNI's ipamd does (EC2 and IMDS through the official SDK) and hands addresses to
//! the `eni-ip` plugin over a Unix socket.
//!
//! Once it has learnt the node and restored its checkpoint it prints one JSON line on
//! stdout, `{"socket":"<path>","introspection":"127.0.0.1:<port>"}`; logs go to stderr.
//! SIGTERM or SIGINT: in-flight calls finish, the checkpoint is written, the socket removed.

use std::process::ExitCode;

use eni_ipamd::lifecycle::run;
use eni_ipamd::service::SERVER_NAME;
use eni_ipamd::settings::{Settings, USAGE};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version") {
        println!("{SERVER_NAME}");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::parse(args, std::env::vars()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("eni-ipamd: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("eni-ipamd: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "eni-ipamd stopped");
            ExitCode::FAILURE
        }
    }
}
