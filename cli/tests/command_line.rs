//! The `pgtls` command line as a person meets it: `--help` for the tool and for each
//! command, `--version`, and bad arguments (exit status 2, a message saying what is wrong,
//! the usage, nothing on stdout). No server needed: the usage checks happen before any
//! connection.

use std::process::{Command, Output};

/// Runs the `pgtls` binary cargo built for these tests.
fn pgtls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgtls"))
        .args(args)
        .env_remove("PGSERVICEFILE")
        .output()
        .expect("running pgtls")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_every_command() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = pgtls(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        for needle in [
            "usage: pgtls <command>",
            "probe [--json] [--quiet] [--resume] 'CONNINFO'",
            "--tickets",
            "proxy --listen ADDR --upstream ADDR",
            "demo ",
            "Exit status",
        ] {
            assert!(help.contains(needle), "{args:?} lacks {needle:?}:\n{help}");
        }
    }
}

#[test]
fn each_command_has_its_help() {
    for (command, needles) in [
        (
            "probe",
            &[
                "usage: pgtls probe",
                "--json",
                "--quiet",
                "connect_timeout",
                "PGSERVICEFILE",
            ][..],
        ),
        (
            "proxy",
            &[
                "usage: pgtls proxy",
                "--listen ADDR",
                "--startup-timeout",
                "SIGHUP",
            ],
        ),
        ("demo", &["usage: pgtls demo", "sslmode", "Exit status"]),
    ] {
        for args in [[command, "--help"], ["help", command]] {
            let out = pgtls(&args);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            let help = stdout(&out);
            for needle in needles {
                assert!(help.contains(needle), "{args:?} lacks {needle:?}:\n{help}");
            }
        }
    }
}

#[test]
fn version_is_the_package_version() {
    let out = pgtls(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).trim(),
        format!("pgtls {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    for (args, message, usage) in [
        (
            &[][..],
            "pgtls: a command is required",
            "usage: pgtls <command>",
        ),
        (
            &["frobnicate"],
            "pgtls: unknown command \"frobnicate\"",
            "usage: pgtls <command>",
        ),
        (
            &["help", "frobnicate"],
            "pgtls: unknown command \"frobnicate\"",
            "usage: pgtls <command>",
        ),
        (
            &["probe"],
            "pgtls probe: a connection string is required",
            "usage: pgtls probe",
        ),
        (
            &["probe", "--json"],
            "pgtls probe: a connection string is required",
            "usage: pgtls probe",
        ),
        (
            &["probe", "--frobnicate", "host=localhost"],
            "pgtls probe: unknown option \"--frobnicate\"",
            "usage: pgtls probe",
        ),
        (
            &["probe", "host=a", "host=b"],
            "pgtls probe: only one connection string may be given",
            "usage: pgtls probe",
        ),
        (
            &["proxy"],
            "pgtls proxy: --listen is required",
            "usage: pgtls proxy",
        ),
        (
            &["proxy", "--listen"],
            "pgtls proxy: --listen needs a value",
            "usage: pgtls proxy",
        ),
        (
            &["proxy", "--startup-timeout", "soon"],
            "pgtls proxy: invalid --startup-timeout \"soon\"",
            "usage: pgtls proxy",
        ),
        (
            &["demo", "--fast"],
            "pgtls demo: unexpected argument \"--fast\"",
            "usage: pgtls demo",
        ),
    ] {
        let out = pgtls(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with(message), "{args:?}: stderr {err:?}");
        assert!(err.contains(usage), "{args:?}: stderr {err:?}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", stdout(&out));
    }
}

#[test]
fn a_bad_connection_string_is_a_failure_in_libpq_words_not_a_usage_error() {
    let out = pgtls(&["probe", "--quiet", "host=localhost sslmode=bogus"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pgtls probe: error: invalid sslmode value: \"bogus\""),
        "{}",
        stderr(&out)
    );
}
