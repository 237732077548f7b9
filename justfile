# Common tasks. Nothing needs `just`: each recipe is the plain command shown.

# Run every sample against the built-in sandbox.
demo:
    cargo run --release -- demo

# The whole test suite (what CI runs after fmt and clippy).
test:
    cargo test

# Benchmarks (release build): validate speed and memory, rate accuracy, throughput,
# run memory. `just bench validate` runs one; `--keep` keeps the temp folders.
bench *ARGS:
    cargo bench --bench ferry_bench -- {{ARGS}}

# Format check and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Everything CI does, in a clean clone.
ci:
    bash .ci/run
