//! The try-it lab: two real keepalived nodes in network namespaces, a
//! local mock cloud API and the real floaty on both, with a live account
//! of every failover while you stop, start and kill nodes.
//!
//!     sudo examples/lab/run              # or: cargo test --test lab -- [--exoscale]
//!
//! It is the end-to-end test's harness (`tests/it/pair/lab.rs`), driven by
//! hand instead of by a script, so what you see here is what CI checks.
//! Commands on stdin: `stop a`, `start a`, `kill a` (SIGKILL keepalived:
//! no STOP reaches floaty), the same for `b`, `status`, `quit`. Ctrl-C or
//! end of input tears everything down.
//!
//! `--script "wait a; stop a; wait b; quit"` runs commands without a
//! terminal (`wait [NODE]` waits until the lab has converged on one MASTER,
//! or on NODE: it alone holds the VIP and runs a refresher, and the API
//! points at it); CI runs it that way so the lab cannot rot. The whole
//! script is checked first: one command the lab does not know (or a
//! `wait z`, a `stop` without a node) and it exits 2 before it starts.

#![allow(dead_code, unused_imports)]

#[path = "../../tests/it/exoscale.rs"]
mod exoscale;
#[path = "../../tests/it/pair/lab.rs"]
mod lab;
mod script;
// The tests' scaffolding; this uses only part of it.
#[allow(dead_code)]
#[path = "../../tests/it/support.rs"]
mod support;

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use lab::{secs, Cloud, Lab, Skip, Snapshot};
use script::{Command, Verb};

/// How often the lab is looked at (each look runs `ip addr` per node).
const TICK: Duration = Duration::from_millis(100);
/// How long `wait` in a script may take before the run fails.
const CONVERGE: Duration = Duration::from_secs(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cloud = if args.iter().any(|a| a == "--exoscale") {
        Cloud::Exoscale
    } else {
        Cloud::Cloudscale
    };
    let script = match args.iter().position(|a| a == "--script") {
        None => None,
        Some(i) => match args.get(i + 1).map(|s| script::parse_script(s)) {
            Some(Ok(commands)) => Some(commands),
            Some(Err(e)) => {
                eprintln!("lab: --script: {e}");
                return ExitCode::from(2);
            }
            None => {
                eprintln!("lab: --script needs the commands (\"wait a; stop a; quit\")");
                return ExitCode::from(2);
            }
        },
    };
    // Ctrl-C must tear the namespaces down, not leave them behind.
    // SAFETY: the handler only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };

    let mut lab = match Lab::for_cloud(cloud) {
        Ok(lab) => lab,
        Err(Skip(why)) => {
            eprintln!("lab: cannot run here: {why}");
            return ExitCode::from(2);
        }
    };
    for name in ["a", "b"] {
        if let Err(e) = lab.node(name).start() {
            eprintln!("lab: cannot start keepalived on node {name}: {e}");
            return ExitCode::FAILURE;
        }
    }
    banner(&lab, cloud);
    let commands = match script {
        Some(s) => scripted(s),
        None => from_stdin(),
    };
    let ok = drive(&mut lab, commands);
    println!("lab: tearing down (keepalived, refreshers, namespaces, files)");
    drop(lab);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn banner(lab: &Lab, cloud: Cloud) {
    println!("floaty try-it lab: {cloud:?} mock API, VIP {}", lab::VIP);
    for n in &lab.nodes {
        println!(
            "  node {}: namespace {}, {} on veth0, priority {}, logs in {}",
            n.name,
            n.ns.name,
            n.addr,
            n.priority,
            n.dir.display()
        );
    }
    println!("commands: {} (Ctrl-C also quits)", script::HELP);
}

/// One command, a line typed that is none, or the end of commands.
enum Input {
    Command(Command),
    Unknown(String),
    End,
}

fn scripted(script: Vec<Command>) -> Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    for cmd in script {
        let _ = tx.send(Input::Command(cmd));
    }
    let _ = tx.send(Input::End);
    rx
}

fn from_stdin() -> Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let input = match script::parse_command(&line) {
                Ok(Some(cmd)) => Input::Command(cmd),
                Ok(None) => continue,
                Err(e) => Input::Unknown(e),
            };
            if tx.send(input).is_err() {
                return;
            }
        }
        let _ = tx.send(Input::End);
    });
    rx
}

/// Watches the lab and runs commands until `quit`, end of input or
/// Ctrl-C. False when a scripted `wait` timed out or a command failed.
fn drive(lab: &mut Lab, commands: Receiver<Input>) -> bool {
    let t0 = Instant::now();
    let mut watch = Watch::new(lab.snapshot());
    watch.print(t0);
    loop {
        if INTERRUPTED.load(Ordering::SeqCst) {
            println!();
            return true;
        }
        match commands.recv_timeout(TICK) {
            Ok(Input::Unknown(e)) => println!("? {e}; try: {}", script::HELP),
            Ok(Input::Command(cmd)) => match run(lab, &mut watch, t0, cmd) {
                Ok(Flow::Go) => {}
                Ok(Flow::Quit) => return true,
                Err(e) => {
                    println!("lab: {e}");
                    return false;
                }
            },
            Ok(Input::End) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        watch.observe(lab.snapshot(), t0);
    }
}

enum Flow {
    Go,
    Quit,
}

fn run(lab: &mut Lab, watch: &mut Watch, t0: Instant, cmd: Command) -> Result<Flow, String> {
    match cmd {
        Command::Quit => return Ok(Flow::Quit),
        Command::Status => watch.print(t0),
        Command::Wait(want) => {
            let started = Instant::now();
            loop {
                let snap = lab.snapshot();
                let done = match want {
                    Some(node) => Lab::converged_on(&snap, node),
                    None => snap.masters.len() == 1 && Lab::converged_on(&snap, snap.masters[0]),
                };
                watch.observe(snap, t0);
                if done {
                    break;
                }
                if started.elapsed() > CONVERGE {
                    return Err(format!(
                        "no convergence{} within {}",
                        want.map_or(String::new(), |n| format!(" on {n}")),
                        secs(CONVERGE)
                    ));
                }
                std::thread::sleep(TICK);
            }
        }
        Command::Act(verb, node) => {
            let name = verb.as_str();
            println!("[{:>7}] > {name} {node}", secs(t0.elapsed()));
            watch.mark(name, node);
            let n = lab.node(node);
            let result = match verb {
                Verb::Stop => n.stop().map(|_| ()),
                Verb::Start => n.start(),
                Verb::Kill => {
                    n.kill();
                    Ok(())
                }
            };
            result.map_err(|e| format!("{name} {node}: {e}"))?;
        }
    }
    Ok(Flow::Go)
}

/// Prints what changed, and how long a failover took from the command
/// that caused it: to the VIP moving (VRRP) and to the API following
/// (floaty).
struct Watch {
    last: Snapshot,
    /// The last command and when it was given.
    cause: Option<(String, Instant)>,
    vip_moved: Option<Duration>,
}

impl Watch {
    fn new(first: Snapshot) -> Watch {
        Watch {
            last: first,
            cause: None,
            vip_moved: None,
        }
    }

    fn mark(&mut self, verb: &str, node: &str) {
        self.cause = Some((format!("{verb} {node}"), Instant::now()));
        self.vip_moved = None;
    }

    fn print(&self, t0: Instant) {
        println!("[{:>7}] {}", secs(t0.elapsed()), describe(&self.last));
    }

    fn observe(&mut self, snap: Snapshot, t0: Instant) {
        if snap == self.last {
            return;
        }
        let vip_changed = snap.masters != self.last.masters;
        let api_changed = snap.api != self.last.api;
        self.last = snap;
        self.print(t0);
        let Some((cause, at)) = &self.cause else {
            return;
        };
        if vip_changed && self.last.masters.len() == 1 {
            let d = at.elapsed();
            self.vip_moved = Some(d);
            println!(
                "          VIP now on {} ({} after `{cause}`)",
                self.last.masters[0],
                secs(d)
            );
        }
        if api_changed
            && self.last.api.is_some()
            && self.last.api == self.last.masters.first().copied()
        {
            let d = at.elapsed();
            let after_vip = self.vip_moved.map_or(String::new(), |v| {
                format!(", {} after the VIP", secs(d.saturating_sub(v)))
            });
            println!(
                "          API follows: address points at {} ({} after `{cause}`{after_vip})",
                self.last.masters[0],
                secs(d)
            );
        }
    }
}

fn describe(s: &Snapshot) -> String {
    let master = match s.masters.as_slice() {
        [] => "none".to_string(),
        [one] => one.to_string(),
        many => format!("{} (SPLIT BRAIN)", many.join("+")),
    };
    let refreshers: Vec<String> = s
        .refreshers
        .iter()
        .map(|(n, pids)| format!("{n}:{}", pids.len()))
        .collect();
    format!(
        "MASTER {master} | API points at {} | refreshers {}",
        s.api.unwrap_or("nobody"),
        refreshers.join(" ")
    )
}
