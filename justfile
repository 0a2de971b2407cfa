# weir tasks. `just` is optional: every recipe is a script you can run directly.
# Install just with: pip install rust-just==1.59.0

# Analyze the shipped sample capture (the README's first command).
run:
    bash scripts/run-sample.sh

# fmt --check, clippy -D warnings, all tests (the README's second command; CI runs it).
test:
    bash scripts/test.sh

# weir flows vs Suricata and tshark on the ~216 MB benchmark capture.
bench-flows:
    bash scripts/bench-flows.sh

# Regenerate docs/FEATURES.md from the feature spec in code.
features-doc:
    cargo run -q -p weir-cli -- features --markdown > docs/FEATURES.md

# Fuzz the reader, decoder and flow table (TARGET: capture or packets), seeded from ../shared.
fuzz target="capture" seconds="600":
    bash scripts/fuzz.sh {{target}} {{seconds}}
