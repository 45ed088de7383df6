//! The operator's commands, when the binary runs as `meta-cni` with arguments and no
//! `CNI_COMMAND`: `inspect` (what the cache holds), `explain` (what an ADD would run),
//! `verify` (a netconf and its NADs, offline), `install` and `uninstall`. Output goes to stdout; an error is one line on
//! stderr naming the problem, and the exit status is 1.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::install;
use crate::meta::{explain, inspect, verify};

/// The meta plugin's cache directory when neither `--cni-dir` nor `--netconf` says.
const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";

#[derive(Debug, Parser)]
#[command(
    name = "meta-cni",
    version,
    about = "A Multus-style meta CNI plugin. Run by a container runtime with CNI_COMMAND set, \
             it is the plugin; run by hand, these commands answer an operator's questions."
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// The attachments of one container, or of all, from the meta plugin's cache: network,
    /// interface, addresses, MAC, delegate chain, state.
    Inspect(InspectArgs),
    /// The plan an ADD would run for a netconf and a pod, touching nothing: attachments,
    /// interface names, each delegate's netconf after capability filtering, and what would
    /// be refused and why.
    Explain(ExplainArgs),
    /// Checks a netconf and every NAD of its nadDir offline; each problem with its file and
    /// where in it.
    Verify(VerifyArgs),
    /// Copies this binary and its delegate links into a CNI bin dir and, when asked, the
    /// netconf into the CNI config dir, each file renamed into place (never "text file busy").
    Install(InstallArgs),
    /// Removes exactly what install made, where it is still ours.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
struct InstallArgs {
    /// The CNI bin dir.
    #[arg(long, default_value = "/opt/cni/bin")]
    bin_dir: PathBuf,
    /// The delegates to link to the binary (default: every bundled one); a name the node's
    /// own plugin holds is left alone.
    #[arg(long, value_delimiter = ',')]
    links: Option<Vec<String>>,
    /// The CNI config dir the netconf goes to.
    #[arg(long, default_value = "/etc/cni/net.d")]
    conf_dir: PathBuf,
    /// The netconf to install as 00-meta-cni.conflist.
    #[arg(long, conflicts_with = "auto")]
    netconf: Option<PathBuf>,
    /// Generate the netconf around the node's own primary config (the first other
    /// .conf/.conflist of the config dir becomes the cluster network), as Multus's auto mode.
    #[arg(long)]
    auto: bool,
    /// With --auto: the kubeconfig the generated netconf names (Kubernetes mode).
    #[arg(long, requires = "auto")]
    kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UninstallArgs {
    /// The CNI bin dir install wrote to.
    #[arg(long, default_value = "/opt/cni/bin")]
    bin_dir: PathBuf,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// Only this container's attachments.
    container: Option<String>,
    /// The cache directory (default: the netconf's `cniDir`, else /var/lib/cni/multus).
    #[arg(long)]
    cni_dir: Option<PathBuf>,
    /// A netconf (or conflist) whose `cniDir` to read.
    #[arg(long)]
    netconf: Option<PathBuf>,
    /// One JSON array for scripts instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// The meta plugin's netconf (or a conflist holding it).
    #[arg(long)]
    netconf: PathBuf,
    /// A Pod object (YAML or JSON): its annotations select the networks, its labels and
    /// ports feed policies.
    #[arg(long, conflicts_with = "networks")]
    pod: Option<PathBuf>,
    /// Networks to attach, in the `k8s.v1.cni.cncf.io/networks` JSON form (replaces the
    /// netconf's `networks`).
    #[arg(long)]
    networks: Option<String>,
    /// The plan as JSON for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The meta plugin's netconf (or a conflist holding it).
    #[arg(long)]
    netconf: PathBuf,
    /// The NAD directory to check (default: the netconf's `nadDir`).
    #[arg(long)]
    nad_dir: Option<PathBuf>,
}

/// Runs the command `args` names (`args[0]` is the program).
pub(crate) fn main(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // --help and --version print and succeed; a usage error prints clap's message.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let (name, outcome) = match cli.command {
        Commands::Inspect(args) => ("inspect", run_inspect(&args)),
        Commands::Explain(args) => ("explain", run_explain(&args)),
        Commands::Verify(args) => ("verify", run_verify(&args)),
        Commands::Install(args) => ("install", run_install(&args)),
        Commands::Uninstall(args) => ("uninstall", run_uninstall(&args)),
    };
    match outcome {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("meta-cni {name}: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// `CNI_PATH` of the environment, for finding delegates as a runtime would; without it the
/// netconf's `binDir` (searched first anyway), else /opt/cni/bin.
fn cni_path(netconf: &serde_json::Map<String, serde_json::Value>) -> Vec<PathBuf> {
    match std::env::var_os("CNI_PATH").filter(|p| !p.is_empty()) {
        Some(path) => std::env::split_paths(&path).collect(),
        None => vec![netconf
            .get("binDir")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("/opt/cni/bin")
            .into()],
    }
}

/// One line for a CNI error.
fn one_line(e: &cni::Error) -> String {
    if e.details.is_empty() {
        e.msg.clone()
    } else {
        format!("{}: {}", e.msg, e.details)
    }
}

fn read_netconf(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    explain::meta_netconf(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn run_inspect(args: &InspectArgs) -> Result<String, String> {
    let cni_dir = match (&args.cni_dir, &args.netconf) {
        (Some(dir), _) => dir.clone(),
        (None, Some(netconf)) => {
            let object = read_netconf(netconf)?;
            let path = cni_path(&object);
            let req = explain::request(object, None, path).map_err(|e| one_line(&e))?;
            crate::meta::cni_dir(&req).map_err(|e| one_line(&e))?
        }
        (None, None) => PathBuf::from(DEFAULT_CNI_DIR),
    };
    let rows =
        inspect::rows(&cni_dir, args.container.as_deref()).map_err(|e| one_line(&e.into()))?;
    if args.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        return Ok(json + "\n");
    }
    Ok(inspect::table(&rows))
}

fn run_explain(args: &ExplainArgs) -> Result<String, String> {
    let mut object = read_netconf(&args.netconf)?;
    if let Some(networks) = &args.networks {
        let value: serde_json::Value =
            serde_json::from_str(networks).map_err(|e| format!("--networks: not JSON: {e}"))?;
        object.insert("networks".into(), value);
    }
    let pod = args.pod.as_deref().map(explain::pod_file).transpose()?;
    let names = pod
        .as_ref()
        .map(|p| (p.namespace.as_str(), p.name.as_str()));
    let path = cni_path(&object);
    let req = explain::request(object, names, path).map_err(|e| one_line(&e))?;
    let plan = explain::explain(&req, pod.as_ref()).map_err(|e| one_line(&e))?;
    if args.json {
        let json = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
        return Ok(json + "\n");
    }
    let mut out = String::new();
    if let Some(why) = &plan.refused {
        out.push_str(&format!("ADD would be refused: {why}\n"));
        return Ok(out);
    }
    out.push_str(&format!(
        "ADD would attach {} network(s), in this order:\n",
        plan.attachments.len()
    ));
    for att in &plan.attachments {
        let cluster = if att.cluster {
            " (cluster network)"
        } else {
            ""
        };
        out.push_str(&format!("{}  {}{cluster}\n", att.interface, att.network));
        for conf in &att.delegates {
            let plugin_type = conf
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("?");
            let json = serde_json::to_string(conf).map_err(|e| e.to_string())?;
            out.push_str(&format!("  {plugin_type}: {json}\n"));
        }
        for problem in &att.problems {
            out.push_str(&format!("  would not run: {problem}\n"));
        }
    }
    Ok(out)
}

fn run_verify(args: &VerifyArgs) -> Result<String, String> {
    let (problems, nads) = verify::verify(&args.netconf, args.nad_dir.as_deref(), &cni_path);
    if problems.is_empty() {
        return Ok(format!(
            "ok: {} and {nads} NAD file(s)\n",
            args.netconf.display()
        ));
    }
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    Err(format!("{} problem(s):\n{}", lines.len(), lines.join("\n")))
}

fn run_install(args: &InstallArgs) -> Result<String, String> {
    let links: Vec<String> = match &args.links {
        Some(links) => links.clone(),
        None => crate::delegates::bundled_names()
            .map(String::from)
            .collect(),
    };
    let netconf = match (&args.netconf, args.auto) {
        (Some(file), _) => Some((args.conf_dir.as_path(), install::Netconf::File(file))),
        (None, true) => Some((
            args.conf_dir.as_path(),
            install::Netconf::Auto {
                kubeconfig: args.kubeconfig.as_deref(),
            },
        )),
        (None, false) => None,
    };
    let plan = install::Plan {
        bin_dir: &args.bin_dir,
        links: &links,
        netconf,
    };
    let done = install::install(&plan).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for path in &done.written {
        out.push_str(&format!("installed {}\n", path.display()));
    }
    for name in &done.skipped {
        out.push_str(&format!(
            "left {} alone: the node's own plugin holds the name\n",
            args.bin_dir.join(name).display()
        ));
    }
    Ok(out)
}

fn run_uninstall(args: &UninstallArgs) -> Result<String, String> {
    let removed = install::uninstall(&args.bin_dir).map_err(|e| e.to_string())?;
    Ok(removed
        .iter()
        .map(|p| format!("removed {}\n", p.display()))
        .collect())
}
