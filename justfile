# pincher tasks. `just` lists them; each wraps the same commands the README gives.

default:
    @just --list

# Run the service on the embedded SQLite database.
serve:
    cargo run --release -- serve

# The full test suite (installs and starts the test peers).
test *ARGS:
    ./scripts/test {{ARGS}}

# Formatting and lints only.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Load benchmarks (see docs/performance.md).
bench:
    ./bench/services.sh

# Build the container image.
image:
    docker build -t pincher:latest .
