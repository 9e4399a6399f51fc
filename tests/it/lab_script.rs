//! The try-it lab's `--script` (examples/lab): the parser it checks the
//! whole script with before it starts anything. `.ci/run` also runs the
//! lab binary itself with a bad script (the lab is a `harness = false`
//! target that `cargo test` does not build).

#[path = "../../examples/lab/script.rs"]
mod script;

use script::{parse_command, parse_script, Command, Verb};

#[test]
fn the_ci_script_parses_to_its_commands() {
    let script = "wait a; stop a; wait b; start a; wait a; kill a; wait b; quit";
    assert_eq!(
        parse_script(script),
        Ok(vec![
            Command::Wait(Some("a")),
            Command::Act(Verb::Stop, "a"),
            Command::Wait(Some("b")),
            Command::Act(Verb::Start, "a"),
            Command::Wait(Some("a")),
            Command::Act(Verb::Kill, "a"),
            Command::Wait(Some("b")),
            Command::Quit,
        ])
    );
    // Blank commands and spacing are nothing; `wait` alone waits for any
    // one MASTER, as the lab documents.
    assert_eq!(
        parse_script(" ; status ;;  wait ;q;"),
        Ok(vec![Command::Status, Command::Wait(None), Command::Quit])
    );
    assert_eq!(parse_script(""), Ok(vec![]));
}

#[test]
fn a_script_with_a_command_the_lab_does_not_know_is_refused_whole() {
    for (script, needle) in [
        (
            "wait a; frobnicate; quit",
            "command 2 (`frobnicate`): unknown command `frobnicate`",
        ),
        ("wait z", "command 1 (`wait z`): no node `z`"),
        ("wait a b", "too many words in `wait a b`"),
        ("start a; stop", "command 2 (`stop`): `stop` needs a node"),
        ("kill c", "command 1 (`kill c`): no node `c`"),
        ("quit now", "too many words in `quit now`"),
        ("wait a; Stop a", "unknown command `Stop`"),
    ] {
        let e = parse_script(script).expect_err(script);
        assert!(e.contains(needle), "{script}: {e}");
        assert_eq!(e.lines().count(), 1, "{script}: {e}");
        assert!(e.contains("commands: stop a|b"), "{script}: {e}");
    }
}

#[test]
fn a_typed_line_is_one_command_or_blank() {
    assert_eq!(
        parse_command("  stop   b "),
        Ok(Some(Command::Act(Verb::Stop, "b")))
    );
    assert_eq!(parse_command("   "), Ok(None));
    assert!(parse_command("help").is_err());
    // The lab prints a verb by the name it is typed with.
    for verb in [Verb::Stop, Verb::Start, Verb::Kill] {
        let line = format!("{} a", verb.as_str());
        assert_eq!(parse_command(&line), Ok(Some(Command::Act(verb, "a"))));
    }
}
