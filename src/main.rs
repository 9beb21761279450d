//! The `twill` command: Fabric's `fab` options for ad-hoc work on many
//! hosts.
//!
//! ```text
//! twill -H web1,web2 -- uname -a
//! twill -H web1,web2 --sudo -- systemctl restart nginx
//! twill -H web1,web2 put dist/app.tar.gz /srv/releases/
//! twill -H web1,web2 get /var/log/app.log 'logs/%(host)s.log'
//! ```

use std::ffi::OsString;
use std::process::ExitCode;

use twill::{Task, Tasks};

fn transfer_task(name: &'static str, doc: &'static str) -> Task {
    Task::new(name, doc, move |args| {
        let [from, to] = args.positional() else {
            return Err(twill::Error::new(
                twill::ErrorKind::Usage,
                format!("{name} needs two paths: {name} FROM TO"),
            ));
        };
        if name == "put" {
            twill::upload(from, to)?;
        } else {
            twill::download(from, to)?;
        }
        Ok(())
    })
}

/// `put A B` and `get A B` as separate words become Fabric's `put:A,B`.
fn rewrite(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut i = 0;
    let mut after_dashes = false;
    while i < argv.len() {
        let word = argv[i].to_string_lossy().into_owned();
        if word == "--" {
            after_dashes = true;
        }
        if !after_dashes && i > 0 && (word == "put" || word == "get") && i + 2 < argv.len() {
            let escape = |s: &OsString| s.to_string_lossy().replace(',', "\\,").replace('=', "\\=");
            out.push(OsString::from(format!(
                "{word}:{},{}",
                escape(&argv[i + 1]),
                escape(&argv[i + 2])
            )));
            i += 3;
            continue;
        }
        out.push(argv[i].clone());
        i += 1;
    }
    out
}

fn main() -> ExitCode {
    let tasks = Tasks::new()
        .program_name("twill")
        .task(transfer_task(
            "put",
            "Upload LOCAL to REMOTE on every host: put LOCAL REMOTE",
        ))
        .task(transfer_task(
            "get",
            "Download REMOTE from every host to LOCAL: get REMOTE LOCAL",
        ));
    tasks.main_with(rewrite(std::env::args_os().collect()))
}
