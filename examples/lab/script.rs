//! The try-it lab's commands, typed at its prompt or given with
//! `--script "CMD; CMD; ..."`. Only parsing lives here (no lab), so the
//! behaviour tests check it too (`tests/it/lab_script.rs`).

/// The lab's nodes.
pub const NODES: [&str; 2] = ["a", "b"];

/// What the lab understands, for messages.
pub const HELP: &str = "stop a|b, start a|b, kill a|b, wait [a|b], status, quit";

/// One lab command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    Status,
    /// Wait until the lab has converged on one MASTER, or on this node.
    Wait(Option<&'static str>),
    Act(Verb, &'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Stop,
    Start,
    /// SIGKILL keepalived: no STOP reaches floaty.
    Kill,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Kill => "kill",
        }
    }
}

/// One command line: `None` when it is blank, an error (one line) when it
/// is not a command.
pub fn parse_command(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&word, rest)) = words.split_first() else {
        return Ok(None);
    };
    let command = match (word, rest) {
        ("quit" | "q" | "exit", []) => Command::Quit,
        ("status", []) => Command::Status,
        ("wait", []) => Command::Wait(None),
        ("wait", [node]) => Command::Wait(Some(node_named(node)?)),
        ("stop", [node]) => Command::Act(Verb::Stop, node_named(node)?),
        ("start", [node]) => Command::Act(Verb::Start, node_named(node)?),
        ("kill", [node]) => Command::Act(Verb::Kill, node_named(node)?),
        ("stop" | "start" | "kill", []) => return Err(format!("`{word}` needs a node (a or b)")),
        ("quit" | "q" | "exit" | "status" | "wait" | "stop" | "start" | "kill", _) => {
            return Err(format!("too many words in `{}`", words.join(" ")))
        }
        _ => return Err(format!("unknown command `{word}`")),
    };
    Ok(Some(command))
}

fn node_named(word: &str) -> Result<&'static str, String> {
    NODES
        .into_iter()
        .find(|n| *n == word)
        .ok_or_else(|| format!("no node `{word}` (the nodes are a and b)"))
}

/// A whole `--script`: commands separated by `;`, every one checked before
/// the lab does anything. The error names the command that is wrong.
pub fn parse_script(script: &str) -> Result<Vec<Command>, String> {
    let mut commands = Vec::new();
    for (i, part) in script.split(';').enumerate() {
        match parse_command(part) {
            Ok(Some(c)) => commands.push(c),
            Ok(None) => {}
            Err(e) => {
                return Err(format!(
                    "command {} (`{}`): {e}; commands: {HELP}",
                    i + 1,
                    part.trim()
                ))
            }
        }
    }
    Ok(commands)
}
