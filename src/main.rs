//! The `twill` command: Fabric's `fab` options for ad-hoc work on many
//! hosts.
//!
//! ```text
//! twill -H web1,web2 -- uname -a
//! twill -H web1,web2 --sudo -- systemctl restart nginx
//! twill -H web1,web2 put dist/app.tar.gz /srv/releases/
//! twill -H web1,web2 get /var/log/app.log 'logs/%(host)s.log'
//! ```

use std::process::ExitCode;

use twill::{Task, Tasks};

/// `put` or `get`: the two words after the name are the paths, verbatim.
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
    .takes_words(2)
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
    tasks.main()
}
