//! Link settings of the `drupe` binary.

use std::env::var;
use std::process::Command;

fn main() {
    let os = var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    // Packed relative relocations (DT_RELR; binutils ≥ 2.38 to link, glibc ≥ 2.36 to run, as on Debian 12): the
    // loader reads and applies ~240 KB less of them at every start, memory the idle process would otherwise keep.
    if os == "linux" && env == "gnu" {
        println!("cargo::rustc-link-arg-bin=drupe=-Wl,-z,pack-relative-relocs");
    }
    // Functions in the order of symbol-order.txt (bench/symbol-order.sh): what a started, idle server runs lies in
    // ~1.2 MiB of contiguous text instead of touching pages all over the 5 MiB, and the kernel maps 64 KiB around
    // every touched page; idle process RSS 7.5 -> 5 MiB. Only lld reads the file: the linker Rust ≥ 1.90 uses for
    // x86_64-unknown-linux-gnu. Elsewhere (e.g. the Pi's cross build with GNU ld) the binary keeps the default order.
    println!("cargo::rerun-if-changed=symbol-order.txt");
    println!("cargo::rerun-if-env-changed=RUSTC");
    if os == "linux" && env == "gnu" && arch == "x86_64" && rustc_links_with_lld() {
        let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("symbol-order.txt");
        println!("cargo::rustc-link-arg-bin=drupe=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo::rustc-link-arg-bin=drupe=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc is 1.90 or newer, which links x86_64-unknown-linux-gnu with its own lld by default.
fn rustc_links_with_lld() -> bool {
    let rustc = var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(output) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&output.stdout);
    let mut numbers = version.split_whitespace().nth(1).unwrap_or("").split('.');
    let major: u32 = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let minor: u32 = numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    major > 1 || (major == 1 && minor >= 90)
}
