# Recipes for day-to-day work. The README's commands stay plain cargo.

# Run every test (the README's test command).
test:
    cargo test --workspace

# Replay one simulated cluster seed, or sweep a range: just sim 7 / just sim-sweep 0..1000
sim seed="1":
    cargo run --release -p raft-sim -- --seed {{seed}}

sim-sweep range="0..1000":
    cargo run --release -p raft-sim -- --seeds {{range}}

# Fuzz one target for a while: just fuzz wire_decode 60
fuzz target seconds="60":
    cd fuzz && cargo +nightly fuzz run {{target}} -- -max_total_time={{seconds}}

# Mutation testing of raft-core (cargo-mutants): every mutant, or one shard of
# a round-robin split: just mutants / just mutants 3/60 / just mutants auto
# (the shard CI picks from the commit hash). Prints the score and the missed.
mutants shard="":
    .ci/mutants-shard {{shard}}

# Benchmarks: the core hot path (criterion).
bench:
    cargo bench -p raft-core --bench hot_path

# The cluster benchmark: 3 nodes on loopback with real fsync, one JSON line (docs/operations.md §6).
bench-cluster clients="32" payload="128" seconds="10":
    cargo run --release -p raft-kv --bin raft-kv-bench -- --clients {{clients}} --payload-bytes {{payload}} --seconds {{seconds}}

# The same in-memory workload against raft-core, raft-rs and openraft; prints
# JSON lines and the markdown table of docs/performance.md. Plain cargo:
#   nice -n 10 cargo run --release --manifest-path bench-peers/Cargo.toml
bench-peers *args:
    nice -n 10 cargo run --release --manifest-path bench-peers/Cargo.toml -- {{args}}

# The same, counting heap allocations per entry (a counting global allocator,
# which costs a little time: throughput figures come from `bench-peers`).
bench-peers-allocations *args:
    nice -n 10 cargo run --release --manifest-path bench-peers/Cargo.toml --features count-allocations -- --runs 1 {{args}}

# This machine's fdatasync latency and loopback TCP round trip (the bounds under bench-cluster).
disk-rtt:
    nice -n 10 cargo run --release --manifest-path bench-peers/Cargo.toml --bin disk-rtt

# Real network faults between raft-kv processes, each in its own network
# namespace (needs root, iproute2, nftables; docs/operations.md §7).
partitions:
    RAFT_PARTITIONS=required cargo test -p raft-kv --test partitions -- --nocapture

# A local cluster under sustained writes: elections, snapshots, peak RSS, a
# follower down for 5 minutes catching up (docs/operations.md, "Saturation").
saturate seconds="600" clients="128" value="128" *flags="":
    cargo run --release -p raft-kv -- saturate --seconds {{seconds}} --clients {{clients}} --value-bytes {{value}} --down-at 120 --down-for 300 {{flags}}

# A local 3-node raft-kv cluster until Ctrl-C.
local-cluster:
    cargo run -p raft-kv -- local-cluster

# Everything CI runs.
ci:
    bash .ci/run

# PUT throughput over HTTP: a local 3-process raft-kv cluster driven by wrk
# (keep-alive; needs `apt-get install wrk`): just bench-http 128 10 128
bench-http connections="128" seconds="10" value="128":
    raft-kv/bench/http-put {{connections}} {{seconds}} {{value}}
