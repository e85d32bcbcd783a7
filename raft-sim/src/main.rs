//! `raft-sim`: the key-value store under simulation, through the library's
//! command line ([`raft_sim::cli`]; `--help` lists the options).

use std::process::ExitCode;

fn main() -> ExitCode {
    raft_sim::cli::main(
        raft_sim::kv::KvService,
        "cargo run --release -p raft-sim --",
    )
}
