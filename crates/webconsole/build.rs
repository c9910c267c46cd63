//! Fetches xterm.js with npm so that the crate can embed it.
//!
//! npm runs in `OUT_DIR/web` on copies of `web/package.json` and `web/package-lock.json`, never
//! in the source tree, and `npm ci` installs exactly what the lock file pins and checks its
//! integrity hashes. The three files the page needs are copied to `OUT_DIR` and the crate is
//! compiled with `cfg(xterm_bundled)`. Without npm, or when it fails, the build still succeeds:
//! the crate then serves a page that explains how to get the browser console.
//!
//! `SERIALGATE_NPM` names the npm program to run (default `npm` from `PATH`);
//! `SERIALGATE_NO_NPM=1` skips npm altogether.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package files copied into `OUT_DIR/web` for npm.
const PACKAGE_FILES: [&str; 2] = ["package.json", "package-lock.json"];

/// What the page uses from `node_modules`, and the name each gets in `OUT_DIR`.
const BUNDLE: [(&str, &str); 3] = [
    ("node_modules/@xterm/xterm/lib/xterm.js", "xterm.js"),
    ("node_modules/@xterm/xterm/css/xterm.css", "xterm.css"),
    (
        "node_modules/@xterm/addon-fit/lib/addon-fit.js",
        "addon-fit.js",
    ),
];

/// Written after a successful install: the package files it installed, so that a later run
/// with the same files can skip npm. A failed or interrupted install leaves no stamp.
const STAMP: &str = "installed.stamp";

/// Why xterm.js is not bundled.
enum Skip {
    /// `SERIALGATE_NO_NPM` is set.
    Disabled,
    /// The npm program could not be started.
    NotFound(String),
    /// Anything else: the message says what.
    Failed(String),
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xterm_bundled)");
    for file in PACKAGE_FILES {
        println!("cargo::rerun-if-changed=web/{file}");
    }
    println!("cargo::rerun-if-env-changed=SERIALGATE_NPM");
    println!("cargo::rerun-if-env-changed=SERIALGATE_NO_NPM");

    match bundle() {
        Ok(()) => println!("cargo::rustc-cfg=xterm_bundled"),
        Err(skip) => explain(skip),
    }
}

fn bundle() -> Result<(), Skip> {
    if env::var_os("SERIALGATE_NO_NPM").is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(Skip::Disabled);
    }
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    let web = out_dir.join("web");
    fs::create_dir_all(&web).map_err(|e| failed("creating", &web, &e))?;

    let mut packages = Vec::new();
    for file in PACKAGE_FILES {
        let source = manifest_dir.join("web").join(file);
        packages.extend(fs::read(&source).map_err(|e| failed("reading", &source, &e))?);
    }

    let stamp = web.join(STAMP);
    let installed = fs::read(&stamp).is_ok_and(|old| old == packages)
        && BUNDLE.iter().all(|(from, _)| web.join(from).is_file());
    if !installed {
        // Until npm succeeds, node_modules may hold anything: no stamp may vouch for it.
        let _ = fs::remove_file(&stamp);
        for file in PACKAGE_FILES {
            let (from, to) = (manifest_dir.join("web").join(file), web.join(file));
            fs::copy(&from, &to).map_err(|e| failed("copying", &from, &e))?;
        }
        npm_ci(&web)?;
        fs::write(&stamp, &packages).map_err(|e| failed("writing", &stamp, &e))?;
    }

    for (from, to) in BUNDLE {
        let (from, to) = (web.join(from), out_dir.join(to));
        fs::copy(&from, &to).map_err(|e| failed("copying", &from, &e))?;
    }
    Ok(())
}

fn npm_ci(dir: &Path) -> Result<(), Skip> {
    let npm = env::var_os("SERIALGATE_NPM")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| OsString::from("npm"));
    let shown = npm.to_string_lossy().into_owned();
    // Output is captured: npm's stdout would otherwise land in cargo's build-script protocol.
    // --prefer-offline lets a rebuild after `cargo clean` use npm's cache without the network;
    // the lock file's integrity hashes are checked either way.
    let output = Command::new(&npm)
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .args(["--prefer-offline", "--loglevel=error"])
        .current_dir(dir)
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Skip::NotFound(shown.clone()),
            _ => Skip::Failed(format!("could not run `{shown}`: {e}")),
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    // npm ends an error with a pointer to its log; the first lines say what went wrong.
    lines.truncate(8);
    Err(Skip::Failed(format!(
        "`{shown} ci` failed ({}): {}",
        output.status,
        lines.join(" | ")
    )))
}

fn explain(skip: Skip) {
    let (why, retry) = match skip {
        Skip::Disabled => {
            println!(
                "cargo::warning=browser console not bundled: SERIALGATE_NO_NPM is set \
                 (the SSH console is unaffected)"
            );
            return;
        }
        Skip::NotFound(npm) => {
            // Installing npm changes no file that cargo watches; watching the directories
            // on PATH makes the first build after the install try again on its own.
            println!("cargo::rerun-if-env-changed=PATH");
            let mut dirs = env::split_paths(&env::var_os("PATH").unwrap_or_default())
                .filter(|dir| dir.is_absolute() && dir.is_dir())
                .collect::<Vec<_>>();
            dirs.sort();
            dirs.dedup();
            for dir in dirs {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
            (
                format!("`{npm}` was not found"),
                "install Node.js with npm (or set SERIALGATE_NPM to an npm program) and build again",
            )
        }
        Skip::Failed(why) => (
            why,
            "fix the cause, then `cargo clean -p webconsole` and build again",
        ),
    };
    println!("cargo::warning=browser console not bundled: {why}");
    println!(
        "cargo::warning=serialgate still builds and works (the SSH console is unaffected; the \
         console page says how to get the browser console); to enable it, {retry}"
    );
}

fn env_var(name: &str) -> Result<OsString, Skip> {
    env::var_os(name).ok_or_else(|| Skip::Failed(format!("{name} is not set")))
}

fn failed(doing: &str, path: &Path, e: &io::Error) -> Skip {
    Skip::Failed(format!("{doing} {}: {e}", path.display()))
}
