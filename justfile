# Common tasks. Nothing needs `just`: each recipe is the plain command shown.

# Run every sample against the built-in sandbox.
demo:
    cargo run --release -- demo

# The whole test suite (what CI runs after fmt and clippy).
test:
    cargo test

# Benchmarks (release build): speed beside its baselines, validate speed and memory,
# rate accuracy, throughput, run memory, hostile inputs. `just bench speed` runs one;
# `--keep` keeps the temp folders.
bench *ARGS:
    cargo bench --bench ferry_bench -- {{ARGS}}

# Fuzz the manifest reader and validator (README, "Fuzzing"): nightly Rust and
# `cargo install cargo-fuzz`; CI does not run it. Targets: manifest, xlsx_parts.
# `just fuzz xlsx_parts 600` runs one for ten minutes; the corpus grows in fuzz/corpus.
fuzz TARGET="manifest" SECONDS="240":
    mkdir -p fuzz/corpus/{{TARGET}}
    cargo +nightly fuzz run {{TARGET}} fuzz/corpus/{{TARGET}} fuzz/seeds/{{TARGET}} -- -max_total_time={{SECONDS}} -rss_limit_mb=2048 -timeout=10 -detect_leaks=0 -max_len=16384

# Format check and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Everything CI does, in a clean clone.
ci:
    bash .ci/run
