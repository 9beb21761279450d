//! Tasks that carry Fabric's marks, without a server: the host list the
//! marks make and its precedence, serial, parallel and `runs_once` runs,
//! aliases, names and default tasks, defaults shown by `-d`, the order of
//! `-l`, `execute` by name, and a run over no hosts. The tasks only print
//! where they run (`host_string` and the process ID), so nothing connects.

use std::process::Output;

use twill::{
    env, execute_with_hosts, puts, set_env, task, with_settings, ErrorKind, Execute, Settings,
    TaskArgs, Tasks,
};

use crate::support::{command_line_child, in_child, text};

/// The line a task prints: its name, where it runs, and the process.
fn report(name: &str, detail: &str) {
    puts(&format!(
        "{name} on {} pid={}{detail}",
        env().host_string().unwrap_or("-".into()),
        std::process::id()
    ));
}

// Two tasks in one block, as a fabfile holds them.
task! {
    /// Runs on the web role.
    #[roles("web")]
    fn on_web() -> twill::Result<()> {
        report("on_web", "");
        Ok(())
    }

    /// Runs on three hosts at once.
    #[hosts("h1", "h2", "h3")]
    #[parallel]
    fn everywhere() -> twill::Result<()> {
        report("everywhere", "");
        // Long enough for the three workers to overlap.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(())
    }
}

task! {
    /// Runs on two hosts, one after the other, whatever -P says.
    #[hosts("h1", "h2")]
    #[serial]
    fn one_by_one() -> twill::Result<()> {
        report("one_by_one", "");
        Ok(())
    }
}

task! {
    /// Runs once, on the first of its hosts.
    #[hosts("h1", "h2", "h3")]
    #[runs_once]
    fn once() -> twill::Result<()> {
        report("once", "");
        if env().get_str("fail_once").is_some() {
            set_env(Settings::new().unset("fail_once"));
            return Err(twill::abort("failing this time"));
        }
        Ok(())
    }
}

task! {
    /// No marks at all, and nothing to return.
    fn unmarked() {
        report("unmarked", "");
    }
}

task! {
    /// Called by other names.
    #[task(alias = "up", name = "type", aliases = ["kind"])]
    fn type_() -> twill::Result<()> {
        report("type", "");
        Ok(())
    }
}

task! {
    /// The task run when the command line names none.
    #[task(default)]
    fn middle() -> twill::Result<()> {
        report("middle", "");
        Ok(())
    }
}

task! {
    /// Tag a release.
    ///
    /// Every argument has a default.
    fn tag(name: String = "master", count: u32 = 3, loud: bool = false, path: std::path::PathBuf = "it's", note: Option<String>) -> twill::Result<()> {
        report("tag", &format!(" name={name} count={count} loud={loud} path={} note={note:?}", path.display()));
        Ok(())
    }
}

task! {
    /// Show the database's status.
    #[task(default)]
    fn status() -> twill::Result<()> {
        report("db.status", "");
        Ok(())
    }
}

task! {
    /// Migrate the database.
    #[hosts("db1")]
    fn migrate(fake: bool = false, label: String = "plain") -> twill::Result<()> {
        report("db.migrate", &format!(" fake={fake} label={label}"));
        Ok(())
    }
}

task! {
    /// Sync a replica.
    fn sync() -> twill::Result<()> {
        report("db.replica.sync", "");
        Ok(())
    }
}

task! {
    /// Restart the application.
    fn restart() -> twill::Result<()> {
        report("app.restart", "");
        Ok(())
    }
}

task! {
    /// Run other tasks, by their execute and by name.
    fn caller() -> twill::Result<()> {
        on_web::execute()?;
        tasks().execute("db.migrate", TaskArgs::new().arg("yes").kwarg("hosts", "h7;h8"))?;
        tasks().execute("db", TaskArgs::new())?;
        Ok(())
    }
}

/// The task list, declared out of order: `-l` sorts it.
fn tasks() -> Tasks {
    Tasks::new()
        .program_name("marks")
        .tasks([type_::task(), middle::task(), tag::task()])
        .namespace(
            "db",
            Tasks::new()
                .namespace("replica", Tasks::new().task(sync::task()))
                .tasks([status::task(), migrate::task()]),
        )
        .namespace("app", Tasks::new().task(restart::task()))
        .tasks([caller::task(), on_web::task(), unmarked::task()])
        .tasks([once::task(), everywhere::task(), one_by_one::task()])
}

/// Runs the task list's command line with `args` in a child copy of this
/// test binary, web being the role of w1 and w2.
fn fixture(test: &str, args: &[&str]) -> Output {
    command_line_child(test, "marks", args, |argv| {
        let web = Settings::new().roledefs([("web", ["w1", "w2"])]);
        with_settings(web, || tasks().run_args(argv))
    })
    .output()
    .unwrap()
}

/// What the child copy running `test` printed, less the test harness's
/// own lines before it.
fn stdout_of(test: &str, out: &Output) -> String {
    let all = text(&out.stdout);
    let start = format!("test {test} ... ");
    match all.find(&start) {
        Some(i) => all[i + start.len()..].to_string(),
        None => all,
    }
}

/// The lines of `stdout` a task printed: `name on host pid=N...`.
fn ran<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| {
            l.split("] ")
                .last()
                .is_some_and(|r| r.starts_with(&format!("{name} on ")))
        })
        .collect()
}

/// The host and process ID of a line of `ran`.
fn host_and_pid(line: &str) -> (String, u32) {
    let rest = line.split(" on ").nth(1).unwrap();
    let host = rest.split(' ').next().unwrap().to_string();
    let pid = rest
        .split("pid=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (host, pid)
}

#[test]
fn marks_make_the_host_list_below_the_callers_hosts_and_above_the_settings() {
    let web = Settings::new()
        .roledefs([("web", ["w1", "w2"])])
        .hosts(["from-settings"]);
    with_settings(web, || {
        // The task's roles beat the hosts setting (-H).
        assert_eq!(
            Execute::task(&on_web::task()).host_list().unwrap(),
            ["w1", "w2"]
        );
        // The caller's hosts or roles beat the task's.
        assert_eq!(
            Execute::task(&on_web::task())
                .hosts(["h9"])
                .host_list()
                .unwrap(),
            ["h9"]
        );
        // A task without marks takes the settings'.
        assert_eq!(
            Execute::task(&unmarked::task()).host_list().unwrap(),
            ["from-settings"]
        );
        // runs_once keeps the first host.
        assert_eq!(Execute::task(&once::task()).host_list().unwrap(), ["h1"]);
        // The builder's own marks.
        let built = twill::Task::new("built", "", |_| Ok(())).roles(["web"]);
        assert_eq!(Execute::task(&built).host_list().unwrap(), ["w1", "w2"]);
    });
}

#[test]
fn execute_runs_a_task_on_the_hosts_of_its_marks() {
    let t = "marks::execute_runs_a_task_on_the_hosts_of_its_marks";
    let out = in_child(t, || {
        let web = Settings::new().roledefs([("web", ["w1", "w2"])]);
        let results = with_settings(web, on_web::execute).unwrap();
        assert_eq!(results.hosts(), ["w1", "w2"]);
    });
    let stdout = stdout_of(t, &out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts: Vec<String> = ran(&stdout, "on_web")
        .iter()
        .map(|l| host_and_pid(l).0)
        .collect();
    assert_eq!(hosts, ["w1", "w2"], "{stdout}");
    assert!(
        stdout.contains("[w1] Executing task 'on_web'\n"),
        "{stdout}"
    );
}

#[test]
fn parallel_serial_and_runs_once_marks_choose_how_it_runs() {
    let t = "marks::parallel_serial_and_runs_once_marks_choose_how_it_runs";
    let out = in_child(t, || {
        puts(&format!("caller pid={}", std::process::id()));
        // @parallel: in worker processes even without -P.
        everywhere::execute().unwrap();
        // @serial: in this process even with -P.
        with_settings(Settings::new().parallel(true), one_by_one::execute).unwrap();
        // @runs_once: once, on the first host; a failed run does not count.
        with_settings(Settings::new().set("fail_once", "yes"), || {
            assert!(once::execute().is_err())
        });
        assert_eq!(once::execute().unwrap().hosts(), ["h1"]);
        assert!(once::execute().unwrap().is_empty(), "ran already");
        assert!(Execute::task(&once::task())
            .run(|| Ok(()))
            .unwrap()
            .is_empty());
    });
    let stdout = stdout_of(t, &out);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let caller: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("caller pid="))
        .unwrap()
        .parse()
        .unwrap();

    let parallel: Vec<(String, u32)> = ran(&stdout, "everywhere")
        .iter()
        .map(|l| host_and_pid(l))
        .collect();
    let mut hosts: Vec<&str> = parallel.iter().map(|(h, _)| h.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["h1", "h2", "h3"], "{stdout}");
    let mut pids: Vec<u32> = parallel.iter().map(|(_, p)| *p).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "one worker per host: {stdout}");
    assert!(!pids.contains(&caller), "{stdout}");

    let serial: Vec<(String, u32)> = ran(&stdout, "one_by_one")
        .iter()
        .map(|l| host_and_pid(l))
        .collect();
    assert_eq!(
        serial,
        [("h1".to_string(), caller), ("h2".to_string(), caller)],
        "{stdout}"
    );

    let once: Vec<String> = ran(&stdout, "once")
        .iter()
        .map(|l| host_and_pid(l).0)
        .collect();
    assert_eq!(once, ["h1", "h1"], "the failed run, then one: {stdout}");
}

#[test]
fn runs_once_runs_once_per_process_on_the_command_line_too() {
    let t = "marks::runs_once_runs_once_per_process_on_the_command_line_too";
    let out = fixture(t, &["once", "once", "-H", "x1,x2"]);
    let stdout = stdout_of(t, &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let once = ran(&stdout, "once");
    assert_eq!(once.len(), 1, "{stdout}");
    assert!(once[0].starts_with("[h1] once on h1 pid="), "{stdout}");
}

/// What a run over no hosts says, after `[host] Executing task 'x' once, ...: `.
const NO_HOSTS: &str = "it has no hosts (none given to execute, none marked on the task, and the hosts and roles settings are empty)";

#[test]
fn execute_over_no_hosts_runs_once_and_says_so() {
    let t = "marks::execute_over_no_hosts_runs_once_and_says_so";
    let out = in_child(t, || {
        let local = unmarked::execute().unwrap();
        assert_eq!(local.hosts(), ["<local-only>"]);
        with_settings(Settings::new().host_string("current"), || {
            unmarked::execute().unwrap();
        });
        // The settings' hosts are hosts.
        with_settings(Settings::new().hosts(["s1"]), unmarked::execute).unwrap();
    });
    let stdout = stdout_of(t, &out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "[localhost] Executing task 'unmarked' once, locally: {NO_HOSTS}\nunmarked on - pid="
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "[current] Executing task 'unmarked' once, on the current host only: {NO_HOSTS}\n[current] unmarked on current pid="
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("[s1] Executing task 'unmarked'\n[s1] unmarked on s1"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("once, ").count(), 2, "{stdout}");
}

#[test]
fn a_top_level_task_without_hosts_runs_quietly_as_in_fabric() {
    let t = "marks::a_top_level_task_without_hosts_runs_quietly_as_in_fabric";
    let out = fixture(t, &["unmarked"]);
    let stdout = stdout_of(t, &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.starts_with("unmarked on - pid="), "{stdout}");
    assert!(!stdout.contains("Executing task"), "{stdout}");
}

#[test]
fn threadbares_execute_with_hosts_refuses_no_hosts() {
    let err = with_settings(Settings::new().unset("hosts").unset("roles"), || {
        execute_with_hosts(|| Ok(1), &[])
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Settings);
    assert!(
        err.to_string().contains("found no host to run task"),
        "{err}"
    );
}

#[test]
fn list_is_in_fabrics_order_with_aliases_and_defaults() {
    let t = "marks::list_is_in_fabrics_order_with_aliases_and_defaults";
    let out = fixture(t, &["-l"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout_of(t, &out),
        "Available commands:\n\n\
         \x20   caller           Run other tasks, by their execute and by name.\n\
         \x20   everywhere       Runs on three hosts at once.\n\
         \x20   kind             Called by other names.\n\
         \x20   middle           The task run when the command line names none.\n\
         \x20   on_web           Runs on the web role.\n\
         \x20   once             Runs once, on the first of its hosts.\n\
         \x20   one_by_one       Runs on two hosts, one after the other, whatever -P says.\n\
         \x20   tag              Tag a release.\n\
         \x20   type             Called by other names.\n\
         \x20   unmarked         No marks at all, and nothing to return.\n\
         \x20   up               Called by other names.\n\
         \x20   app.restart      Restart the application.\n\
         \x20   db               Show the database's status.\n\
         \x20   db.migrate       Migrate the database.\n\
         \x20   db.status        Show the database's status.\n\
         \x20   db.replica.sync  Sync a replica.\n"
    );
}

#[test]
fn display_shows_defaults_as_fabric_does() {
    let t = "marks::display_shows_defaults_as_fabric_does";
    let out = fixture(t, &["-d", "tag"]);
    assert_eq!(
        stdout_of(t, &out),
        "Displaying detailed information for task 'tag':\n\n    Tag a release.\n\n    Every argument has a default.\n\n    Arguments: name='master', count=3, loud=False, path=\"it's\", note=None\n\n"
    );
    // An alias and a namespace name show their task.
    let out = fixture(t, &["-d", "up"]);
    assert!(
        stdout_of(t, &out).starts_with(
            "Displaying detailed information for task 'up':\n\n    Called by other names.\n"
        ),
        "{}",
        stdout_of(t, &out)
    );
    let out = fixture(t, &["-d", "db"]);
    assert!(
        stdout_of(t, &out).contains("Show the database's status."),
        "{}",
        stdout_of(t, &out)
    );
}

#[test]
fn defaults_fill_the_arguments_not_given() {
    let t = "marks::defaults_fill_the_arguments_not_given";
    let out = fixture(t, &["tag", "tag:v2,loud=yes,note=n"]);
    let stdout = stdout_of(t, &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        ran(&stdout, "tag")
            .iter()
            .map(|l| l.split_once(" pid=").unwrap().1.split_once(' ').unwrap().1)
            .collect::<Vec<_>>(),
        [
            "name=master count=3 loud=false path=it's note=None",
            "name=v2 count=3 loud=true path=it's note=Some(\"n\")"
        ],
        "{stdout}"
    );
    let out = fixture(t, &["tag:count=many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "task 'tag': argument 'count' expects a whole number of 0 or more, but got 'many'"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn aliases_names_and_default_tasks_run_by_every_name() {
    let t = "marks::aliases_names_and_default_tasks_run_by_every_name";
    let out = fixture(t, &["type", "up", "kind", "db", "db.status"]);
    let stdout = stdout_of(t, &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(ran(&stdout, "type").len(), 3, "{stdout}");
    assert_eq!(ran(&stdout, "db.status").len(), 2, "{stdout}");
    // The function's own name is not the task's.
    let out = fixture(t, &["type_"]);
    assert_eq!(out.status.code(), Some(2));
    // With no task named, the default runs.
    let out = fixture(t, &[]);
    let stdout = stdout_of(t, &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(ran(&stdout, "middle").len(), 1, "{stdout}");
}

#[test]
fn execute_by_name_takes_arguments_and_host_lists_as_the_command_line_does() {
    let t = "marks::execute_by_name_takes_arguments_and_host_lists_as_the_command_line_does";
    let out = fixture(t, &["caller"]);
    let stdout = stdout_of(t, &out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<String> = stdout
        .lines()
        .filter(|l| l.contains(" on ") && l.contains("pid="))
        .map(|l| {
            let (before, after) = l.split_once(" pid=").unwrap();
            let detail = after.split_once(' ').map(|x| x.1).unwrap_or("");
            format!("{before} {detail}").trim_end().to_string()
        })
        .collect();
    assert_eq!(
        lines,
        [
            "[w1] on_web on w1",
            "[w2] on_web on w2",
            "[h7] db.migrate on h7 fake=true label=plain",
            "[h8] db.migrate on h8 fake=true label=plain",
            "db.status on -",
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("[h7] Executing task 'db.migrate'\n"),
        "{stdout}"
    );

    // Unknown names and arguments that do not fit fail before anything runs.
    let web = Settings::new().hide("everything");
    with_settings(web, || {
        let err = tasks().execute("nope", TaskArgs::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings);
        assert!(
            err.to_string().contains("'nope' is not the name of a task"),
            "{err}"
        );
        let err = tasks()
            .execute("db.migrate", TaskArgs::new().kwarg("colour", "red"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings);
        assert!(
            err.to_string().contains(
                "task 'db.migrate' has no argument 'colour' (its arguments: fake, label)"
            ),
            "{err}"
        );
        let err = tasks()
            .execute("db.migrate", TaskArgs::new().arg("perhaps"))
            .unwrap_err();
        assert!(err.to_string().contains("expects true or false"), "{err}");
        // The marks and host arguments choose the hosts.
        let results = tasks().execute("db.migrate", TaskArgs::new()).unwrap();
        assert_eq!(results.hosts(), ["db1"]);
        let results = tasks()
            .execute("db.migrate", TaskArgs::new().kwarg("host", "db2"))
            .unwrap();
        assert_eq!(results.hosts(), ["db2"]);
    });
}
