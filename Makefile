# The two commands of the README. Both install what is missing on Debian/Ubuntu first.
.PHONY: demo test lint

demo:
	scripts/demo

test:
	scripts/install-deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@# nextest runs each test in a process of its own, in parallel; cargo test otherwise.
	if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --all-targets --no-fail-fast; else cargo test --workspace --all-targets --no-fail-fast; fi

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
