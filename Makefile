# The two commands of the README. Both install what is missing on Debian/Ubuntu first.
.PHONY: demo test lint

demo:
	scripts/demo

test:
	scripts/install-deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
