//! `weir-web-bindgen INPUT.wasm OUT_DIR NAME`: what `wasm-bindgen --target web
//! --no-typescript --out-dir OUT_DIR --out-name NAME INPUT.wasm` does (the same library, the
//! same settings), built as part of the workspace's one release build instead of a separate
//! `cargo install wasm-bindgen-cli` (~7 minutes cold on two cores, most of it the CLI's test
//! runner, HTTP client and server, which weir never runs). scripts/build-web.sh calls it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, out_dir, name] = args.as_slice() else {
        eprintln!(
            "usage: weir-web-bindgen INPUT.wasm OUT_DIR NAME\n\
             writes OUT_DIR/NAME.js and OUT_DIR/NAME_bg.wasm (wasm-bindgen --target web, no TypeScript)"
        );
        return ExitCode::from(2);
    };
    match bindgen(input, out_dir, name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-web-bindgen: {input}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The wasm-bindgen CLI's settings for `--target web --no-typescript` (its other flags at
/// their defaults), from wasm-bindgen-cli 0.2.130's `rmain`.
#[allow(deprecated)]
fn bindgen(input: &str, out_dir: &str, name: &str) -> anyhow::Result<()> {
    let mut b = wasm_bindgen_cli_support::Bindgen::new();
    b.web(true)?;
    b.input_path(input)
        .debug(false)
        .demangle(true)
        .keep_lld_exports(false)
        .keep_debug(false)
        .split_debug_info(false)
        .remove_name_section(false)
        .remove_producers_section(false)
        .typescript(false)
        .omit_imports(false)
        .omit_default_module_path(false)
        .split_linked_modules(false)
        .js_string_builtins(false)
        .ts_typed_array_buffers(false)
        .reference_types(false)
        .reset_state_function(false)
        .force_enable_abort_handler(false)
        .out_name(name);
    b.generate(out_dir)
}
