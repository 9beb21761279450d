//! A small real deployment with twill, the way a Fabric 1.x fabfile does it:
//! upload a release, run commands in its directory with `cd`, install it
//! with `sudo`, download a report, and handle a failing command with
//! `warn_only`.
//!
//! It deploys to the throwaway OpenSSH server of `tests-remote/`; `./demo.sh`
//! starts that server, runs this example and stops the server again. That
//! server runs on this machine, so the demo installs below a scratch
//! directory (`TWILL_DEMO_ROOT`, which `demo.sh` sets) instead of into
//! `/opt` and `/etc`, and leaves the machine as it found it.
//! Against your own host: `TWILL_DEMO_HOST=deploy@web1 cargo run --example deploy`
//! (the user needs passwordless sudo).
//!
//! The run is recorded in a journal (in `TWILL_DEMO_ROOT/journal`, else the
//! user's state directory, where `twill log` finds it), and the demo ends
//! by reading it back: what ran, and the SHA-256 of each file it moved.
//!
//! The Fabric 1.x original:
//!
//! ```python
//! @task
//! def deploy():
//!     release = "releases/%s" % time.strftime("%Y%m%d%H%M%S")
//!     run("mkdir -p %s" % release)
//!     put("dist/*", release)
//!     with cd(release):
//!         run("sh build.sh")
//!         sudo("mkdir -p /opt/hello && cp -r . /opt/hello")
//!     put("hello.conf", "/etc/hello.conf", use_sudo=True, mode=0o644)
//!     with settings(warn_only=True):
//!         if run("/opt/hello/check.sh --strict").failed:
//!             warn("strict check failed; continuing")
//!     get("%s/report.txt" % release, "reports/%(host)s.txt")
//! ```

use std::fs;
use std::path::Path;

use twill::{
    cd, download, put, run, sudo, upload_with, warn_only, with_settings, Settings, UploadOptions,
};

fn main() {
    let journal = std::env::var("TWILL_DEMO_ROOT")
        .map(|root| Settings::new().journal_dir(format!("{root}/journal")))
        .unwrap_or_default();
    let result = connection().and_then(|conn| {
        with_settings(conn.merge(journal), || {
            let run = twill::events::record_run("deploy")?;
            let deployed = deploy();
            let journal = run.journal().map(Path::to_path_buf);
            run.end();
            deployed.map(|()| journal)
        })
    });
    let code = match result {
        Ok(journal) => {
            println!("\nDone.");
            if let Some(path) = journal {
                on_record(&path);
            }
            0
        }
        Err(e) => {
            e.report();
            1
        }
    };
    twill::disconnect_all();
    std::process::exit(code);
}

/// What the run's journal holds: each operation, and each file moved with
/// its SHA-256.
fn on_record(path: &Path) {
    let Ok(run) = twill::events::journal::Run::load(path) else {
        return;
    };
    println!("\nOn record in {}:", path.display());
    for event in &run.events {
        if let twill::events::EventKind::OperationEnded(op) = &event.kind {
            let host = event.host.as_deref().unwrap_or("localhost");
            let code = op
                .exit_code
                .map_or(String::new(), |c| format!(", exit code {c}"));
            // An operation twill ran for another (a sudo put's `test -d`
            // and move) names it.
            let of = op
                .helper
                .as_ref()
                .map_or(String::new(), |h| format!(" (for {h})"));
            println!(
                "  [{host}] {}{of}: {} ({}{code})",
                op.op.name(),
                op.command,
                op.outcome.name()
            );
            for f in &op.files {
                println!(
                    "      {} ({} bytes, sha256 {})",
                    f.remote,
                    f.bytes,
                    &f.sha256[..16]
                );
            }
        }
    }
    println!(
        "Replay it with: cargo run -- log show {} --journal-dir {}",
        run.id(),
        path.parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
}

/// Where to deploy: `TWILL_DEMO_HOST`, else the throwaway test server.
fn connection() -> twill::Result<Settings> {
    if let Ok(host) = std::env::var("TWILL_DEMO_HOST") {
        return Ok(Settings::new().host_string(host));
    }
    let var = |name: &str| {
        std::env::var(name).map_err(|_| {
            twill::abort(format!(
                "{name} is not set: run ./demo.sh, or set TWILL_DEMO_HOST"
            ))
        })
    };
    Ok(Settings::new()
        .host_string(format!(
            "{}@{}:{}",
            var("TWILL_TEST_SUDO_USER")?,
            var("TWILL_TEST_HOST")?,
            var("TWILL_TEST_PORT")?
        ))
        .key_filename([var("TWILL_TEST_KEY")?])
        .known_hosts(var("TWILL_TEST_KNOWN_HOSTS")?))
}

fn deploy() -> twill::Result<()> {
    let dist = tempfile::tempdir()
        .map_err(|e| twill::abort(format!("cannot create a build directory: {e}")))?;
    build_locally(dist.path());

    let stamp = twill::local_capture("date +%Y%m%d%H%M%S")?;
    let release = format!("releases/{stamp}");
    run(format!("mkdir -p {release}"))?;
    put(
        format!("{}/app/*", dist.path().display()),
        format!("{release}/"),
    )?;

    // "" on a real host: /opt/hello and /etc/hello.conf.
    let root = std::env::var("TWILL_DEMO_ROOT").unwrap_or_default();
    let (opt, etc) = (format!("{root}/opt/hello"), format!("{root}/etc"));
    with_settings(cd(&release), || {
        run("sh build.sh")?;
        sudo(format!(
            "mkdir -p {opt} && cp -r . {opt} && chmod 755 {opt}/*.sh"
        ))?;
        twill::Result::Ok(())
    })?;
    upload_with(
        dist.path().join("hello.conf"),
        format!("{etc}/hello.conf"),
        &UploadOptions::new().use_sudo(true).mode(0o644),
    )?;
    println!("installed: {}", run(format!("{opt}/hello.sh {etc}"))?);

    let check = with_settings(warn_only(), || run(format!("{opt}/check.sh --strict")))?;
    if check.failed() {
        twill::warn(&format!(
            "strict check failed with code {}; continuing",
            check.return_code()
        ));
    }

    let reports = dist.path().join("reports");
    let got = download(
        format!("{release}/report.txt"),
        reports.join("%(host)s.txt"),
    )?;
    println!(
        "report downloaded to {}:\n{}",
        got[0].display(),
        fs::read_to_string(&got[0]).unwrap_or_default()
    );
    Ok(())
}

/// The "build": a tiny application and its configuration.
fn build_locally(dir: &Path) {
    let app = dir.join("app");
    fs::create_dir_all(&app).expect("build directory");
    fs::write(
        app.join("build.sh"),
        "echo \"built on $(hostname) at $(date)\" > report.txt\nwc -c *.sh >> report.txt\n",
    )
    .unwrap();
    fs::write(
        app.join("hello.sh"),
        "#!/bin/sh\necho \"hello from $(cat \"${1:-/etc}/hello.conf\")\"\n",
    )
    .unwrap();
    fs::write(app.join("check.sh"), "#!/bin/sh\n[ \"$1\" != --strict ] || { echo 'strict mode: missing TLS certificate' >&2; exit 3; }\n").unwrap();
    fs::write(dir.join("hello.conf"), "twill demo\n").unwrap();
}
