//! Your own state machine under simulation: bank accounts with transfers.
//!
//! Everything here goes through raft-sim's public API: a [`StateMachine`]
//! (the accounts), a [`Workload`] (clients moving money and reading
//! balances), a [`Model`] (the sequential bank the history must be
//! linearizable against), an invariant checked after every simulated event
//! ("money is conserved" on every replica) and the library's command line.
//!
//! ```text
//! cargo run --release -p raft-sim --example bank -- --seeds 0..1000
//! cargo run --release -p raft-sim --example bank -- --seed 3 -v
//! cargo run --release -p raft-sim --example bank -- --bug --seed 0 --shrink
//! ```
//!
//! `--bug` switches on a deliberate bug in the state machine (a transfer from
//! an account to itself mints money); the simulator catches it and shrinks
//! the failing run.

use raft_sim::rng::{Ppm, SimRng};
use raft_sim::scenario::Knobs;
use raft_sim::service::{Model, Request, RequestOf, Service, StateMachine, Workload};
use raft_sim::world::World;
use serde::{Deserialize, Serialize};
use std::process::ExitCode;

/// Accounts in the bank.
const ACCOUNTS: usize = 4;
/// Every account's opening balance.
const OPENING: u64 = 100;
/// The money in the bank, forever.
const TOTAL: u64 = ACCOUNTS as u64 * OPENING;

/// A command: move `amount` from one account to another (refused, changing
/// nothing, if the source holds less).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    from: usize,
    to: usize,
    amount: u64,
}

/// What a request returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Whether the transfer happened.
    Transferred(bool),
    /// An account's balance.
    Balance(u64),
}

/// The balances of every account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Balances([u64; ACCOUNTS]);

impl Default for Balances {
    fn default() -> Self {
        Balances([OPENING; ACCOUNTS])
    }
}

impl Balances {
    fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The correct transfer, used by the model (and by the machine unless buggy).
    fn transfer(&mut self, t: &Transfer) -> Reply {
        if self.0[t.from] < t.amount {
            return Reply::Transferred(false);
        }
        self.0[t.from] -= t.amount;
        self.0[t.to] += t.amount;
        Reply::Transferred(true)
    }
}

/// One replica's bank.
pub struct Bank {
    balances: Balances,
    /// Computes both new balances before storing either: right for two
    /// accounts, but a transfer to the same account stores only the credit.
    bug: bool,
}

impl StateMachine for Bank {
    type Command = Transfer;
    /// The account whose balance is read.
    type Query = usize;
    type Output = Reply;

    fn apply(&mut self, t: &Transfer) -> Reply {
        if !self.bug {
            return self.balances.transfer(t);
        }
        let b = &mut self.balances.0;
        if b[t.from] < t.amount {
            return Reply::Transferred(false);
        }
        let (debited, credited) = (b[t.from] - t.amount, b[t.to] + t.amount);
        b[t.from] = debited;
        b[t.to] = credited;
        Reply::Transferred(true)
    }

    fn read(&self, account: &usize) -> Reply {
        Reply::Balance(self.balances.0[*account])
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.balances.0).expect("balances always serialize")
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.balances.0 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn digest(&self) -> u64 {
        self.balances
            .0
            .iter()
            .fold(0xb4c5, |h, b| (h ^ b).wrapping_mul(0x100_0000_01b3))
    }
}

/// Clients: mostly transfers between random accounts (sometimes the same
/// one), some balance reads.
pub struct Customers;

impl Workload for Customers {
    type Machine = Bank;

    fn next(&mut self, rng: &mut SimRng) -> RequestOf<Bank> {
        let account = rng.below(ACCOUNTS as u64) as usize;
        if rng.chance(Ppm(300_000)) {
            return Request::Read(account);
        }
        Request::Write(Transfer {
            from: account,
            to: rng.below(ACCOUNTS as u64) as usize,
            amount: rng.between(1, OPENING),
        })
    }
}

/// The bank as one sequential process.
pub struct Ledger;

impl Model for Ledger {
    type Machine = Bank;
    type State = Balances;

    fn init(&self) -> Balances {
        Balances::default()
    }

    fn step(&self, state: &mut Balances, request: &RequestOf<Bank>) -> Reply {
        match request {
            Request::Write(t) => state.transfer(t),
            Request::Read(account) => Reply::Balance(state.0[*account]),
        }
    }
}

/// The bank as a service under test.
#[derive(Clone, Copy, Debug)]
pub struct BankService {
    /// Switches on the deliberate bug (see [`Bank`]).
    pub bug: bool,
}

impl Service for BankService {
    type Machine = Bank;
    type Workload = Customers;
    type Model = Ledger;

    fn machine(&self) -> Bank {
        Bank {
            balances: Balances::default(),
            bug: self.bug,
        }
    }

    fn workload(&self, _knobs: &Knobs) -> Customers {
        Customers
    }

    fn model(&self) -> Ledger {
        Ledger
    }

    fn prepare(&self, world: &mut World<Self>) {
        world.add_invariant("money-conserved", |w| {
            for i in 0..w.node_count() {
                let total = w.state_machine(i).machine().balances.total();
                if total != TOTAL {
                    return Err(format!("n{} holds {total} in total, not {TOTAL}", i + 1));
                }
            }
            Ok(())
        });
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let bug = args.iter().any(|a| a == "--bug");
    let args = args.into_iter().filter(|a| a != "--bug");
    let command = if bug {
        "cargo run --release -p raft-sim --example bank -- --bug"
    } else {
        "cargo run --release -p raft-sim --example bank --"
    };
    raft_sim::cli::main_from(BankService { bug }, command, args)
}
