//! The command line: `--help`, `--version`, and settings refused before anything starts,
//! in one line naming the flag or variable. (Running the agent against the emulated cloud is
//! `conformance/tests/eni_agent.rs`, which this test target also gives its binary to.)

use std::process::{Command, Output};

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eni-ipamd"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run eni-ipamd")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_and_version_answer_and_exit_0() {
    let help = agent(&["--help"], &[]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.starts_with("usage: eni-ipamd"), "{text}");
    assert!(text.contains("WARM_ENI_TARGET"), "{text}");

    let version = agent(&["--version"], &[]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("eni-ipamd"));
}

#[test]
fn bad_settings_are_refused_in_one_line_naming_them() {
    for (args, env, named) in [
        (&["--bogus"][..], &[][..], "--bogus"),
        (&["--socket"][..], &[][..], "--socket"),
        (&[][..], &[("WARM_IP_TARGET", "many")][..], "WARM_IP_TARGET"),
        (
            &[][..],
            &[("ENI_IPAMD_MANAGE_NODE_NETWORK", "perhaps")][..],
            "ENI_IPAMD_MANAGE_NODE_NETWORK",
        ),
    ] {
        let out = agent(args, env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} {env:?}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(named), "{named} not in {err}");
    }
}
