//! The ported Django fabfile (`examples/blog.rs`) against the throwaway
//! sshd: its host names come from an ssh_config file that points them at
//! loopback addresses, and its paths from `--set`, so that everything it
//! writes lands in a temporary directory. Each check reads the result on
//! the server (this machine) and the lines Fabric would print.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use twill::{run, with_settings};

use crate::support::{as_user, example, port, text, var};
use crate::terminal::Pane;

/// A place for one run of the fabfile: the server's `/srv/blog` and
/// nginx's `sites-enabled` in a temporary directory, an ssh_config that
/// sends the fabfile's host names to the test server, and a "reboot" that
/// drops the connection.
pub(crate) struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    pub(crate) fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        // The sudo user reaches it; the fabfile creates `root` with sudo.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(dir.path().join("sites-enabled")).unwrap();
        let hosts = [
            ("staging.blog.example", 6),
            ("web1.blog.example", 7),
            ("web2.blog.example", 8),
            ("db1.blog.example", 9),
        ];
        let mut config = String::new();
        for (name, n) in hosts {
            config.push_str(&format!("Host {name}\n    HostName 127.0.0.{n}\n\n"));
        }
        config.push_str(&format!(
            "Host *.blog.example\n    User {}\n    Port {}\n    IdentityFile {}\n    IdentitiesOnly yes\n",
            var("TWILL_TEST_SUDO_USER"),
            port(),
            var("TWILL_TEST_KEY")
        ));
        fs::write(dir.path().join("ssh_config"), config).unwrap();
        // Leaves a trace, then drops the connection as a reboot does.
        let reboot = format!(
            "echo rebooted >> {}/srv/blog/shared/reboots\n{}\n",
            dir.path().display(),
            crate::reboot::DROP_CONNECTION
        );
        fs::write(dir.path().join("reboot.sh"), reboot).unwrap();
        Site { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The command line options that aim the fabfile at this site.
    pub(crate) fn options(&self) -> Vec<String> {
        vec![
            "-a".into(),
            "-k".into(),
            "--set".into(),
            format!(
                "known_hosts={},ssh_config_path={},root={},nginx_sites={},reboot_command=sh {}",
                var("TWILL_TEST_KNOWN_HOSTS"),
                self.path("ssh_config").display(),
                self.path("srv/blog").display(),
                self.path("sites-enabled").display(),
                self.path("reboot.sh").display(),
            ),
        ]
    }

    /// Runs the fabfile with `args` and returns its output, checking that
    /// it succeeded.
    fn fab(&self, args: &[&str]) -> (String, String) {
        let out: Output = Command::new(example("blog"))
            .args(self.options())
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{args:?}:\n{stdout}{stderr}");
        (stdout, stderr)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(&format!("srv/blog/{rel}")))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn the_ported_django_fabfile_provisions_and_deploys() {
    let site = Site::new();

    // Staging: one host with both roles, provisioned then deployed.
    let (stdout, _) = site.fab(&["staging", "bootstrap", "deploy:tag=v1"]);
    let root = site.path("srv/blog");
    let r = root.display();
    let owner = fs::metadata(&root).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&owner),
        server("id -u").parse::<u32>().unwrap(),
        "chown $SUDO_USER through sudo"
    );
    assert_eq!(
        stdout
            .matches("[staging.blog.example] Executing task 'bootstrap'")
            .count(),
        1,
        "the roles name one host once: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "[staging.blog.example] sudo: mkdir -p {r} && chown $SUDO_USER {r}\n"
        )),
        "{stdout}"
    );
    assert!(stdout.contains(&format!(
        "[staging.blog.example] run: echo 'vm.swappiness = 10' >> \"$(echo {r}/conf/sysctl.conf)\"\n"
    )), "{stdout}");
    assert_eq!(
        lines(&site.read("conf/sysctl.conf")),
        ["vm.swappiness = 10", "net.core.somaxconn = 1024"]
    );
    assert_eq!(
        lines(&site.read("shared/.env")),
        ["DJANGO_SETTINGS_MODULE=blog.settings"]
    );

    // The release: rsync'd without what is excluded, settings edited by sed.
    let current = fs::read_link(root.join("current")).unwrap();
    let release = current.file_name().unwrap().to_str().unwrap().to_string();
    assert!(release.ends_with("-v1"), "{release}");
    assert!(current.join("manage.py").exists());
    assert!(!current.join("fabfile.py").exists() && !current.join("deploy").exists());
    let settings = fs::read_to_string(current.join("blog/settings.py")).unwrap();
    assert!(settings.contains("\nDEBUG = False\n"), "{settings}");
    assert!(
        settings.contains("\nALLOWED_HOSTS = ['staging.blog.example']\n"),
        "{settings}"
    );
    assert!(
        current.join("blog/settings.py.bak").exists(),
        "sed's backup"
    );
    // Fabric's rsync line, connecting as twill does: the ssh_config file,
    // the resolved address, strict host keys against twill's known_hosts.
    let rsync = stdout
        .lines()
        .find(|l| l.starts_with("[staging.blog.example] rsync_project: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        rsync.starts_with(&format!(
            "[staging.blog.example] rsync_project: rsync --delete --exclude '*.pyc' --exclude fabfile.py --exclude deploy -pthrvz --rsh='ssh -F {} ",
            site.path("ssh_config").display()
        )),
        "{rsync}"
    );
    assert!(rsync.contains(" -o StrictHostKeyChecking=yes "), "{rsync}");
    assert!(
        rsync.ends_with(&format!(
            "/examples/blog_site/ {}@127.0.0.6:{r}/releases/{release}/",
            var("TWILL_TEST_SUDO_USER")
        )),
        "{rsync}"
    );
    assert!(stdout.contains(&"[staging.blog.example] run: sed -i.bak -r -e 's/^ALLOWED_HOSTS = .*$/ALLOWED_HOSTS = ['\\''staging.blog.example'\\'']/g' \"$(echo blog/settings.py)\"\n".to_string()), "{stdout}");

    // The templates, the site enabled through sudo.
    let nginx = site.read("conf/nginx.conf");
    assert!(
        nginx.contains("server_name staging.blog.example;"),
        "{nginx}"
    );
    assert!(
        nginx.contains(&format!("alias {r}/shared/static/;")),
        "{nginx}"
    );
    let gunicorn = site.read("conf/gunicorn.conf.py");
    assert!(gunicorn.contains("workers = 2\n"), "{gunicorn}");
    assert!(!gunicorn.contains("preload_app"), "{gunicorn}");
    assert_eq!(
        fs::read_link(site.path("sites-enabled/blog")).unwrap(),
        root.join("conf/nginx.conf")
    );

    // migrate once, in the virtualenv; restart on the web host.
    assert_eq!(lines(&site.read("shared/migrations")), [release.as_str()]);
    assert!(
        stdout.contains("[staging.blog.example] out: Applying blog.0001_initial... OK"),
        "{stdout}"
    );
    assert_eq!(lines(&site.read("shared/reloads")), ["reloaded by root"]);
    assert!(site.path("srv/blog/shared/static/site.css").exists());

    // Production: three hosts. bootstrap appends nothing twice, upload and
    // restart run on both web hosts, migrate once on the database host.
    let (stdout, _) = site.fab(&["production", "bootstrap", "deploy:tag=v2"]);
    for host in ["web1", "web2", "db1"] {
        assert!(
            stdout.contains(&format!("[{host}.blog.example] Executing task 'bootstrap'")),
            "{stdout}"
        );
    }
    assert_eq!(
        lines(&site.read("conf/sysctl.conf")),
        ["vm.swappiness = 10", "net.core.somaxconn = 1024"],
        "append adds only what is missing"
    );
    for (task, hosts) in [
        ("upload", ["web1", "web2"].as_slice()),
        ("configure", &["web1", "web2"]),
        ("migrate", &["db1"]),
        ("restart", &["web1", "web2"]),
    ] {
        for host in ["web1", "web2", "db1"] {
            assert_eq!(
                stdout.contains(&format!("[{host}.blog.example] Executing task '{task}'")),
                hosts.contains(&host),
                "{task} on {host}: {stdout}"
            );
        }
    }
    let release2 = fs::read_link(root.join("current")).unwrap();
    let release2 = release2.file_name().unwrap().to_str().unwrap().to_string();
    assert!(release2.ends_with("-v2"), "{release2}");
    assert_eq!(
        lines(&site.read("shared/migrations")),
        [release.as_str(), release2.as_str()]
    );
    assert_eq!(lines(&site.read("shared/reloads")), ["reloaded by root"; 3]);
    let gunicorn = site.read("conf/gunicorn.conf.py");
    assert!(
        gunicorn.contains("workers = 8\n") && gunicorn.contains("preload_app = True"),
        "{gunicorn}"
    );
    assert!(
        site.path("srv/blog/conf/nginx.conf.bak").exists(),
        "the old configuration kept"
    );
    assert!(site
        .read("conf/nginx.conf")
        .contains("server_name blog.example;"));
}

#[test]
fn the_ported_django_fabfile_upgrades_and_reboots() {
    let site = Site::new();
    site.fab(&["staging", "bootstrap"]);
    let (stdout, _) = site.fab(&["staging", "upgrade"]);
    assert_eq!(
        lines(&site.read("shared/upgrades")),
        [format!("staging upgraded on {}", server("hostname"))]
    );
    // The reboot ran through sudo, hidden as in Fabric, and the connection
    // it dropped was opened again before the task ended.
    assert_eq!(lines(&site.read("shared/reboots")), ["rebooted"]);
    assert!(!stdout.contains("reboot.sh"), "{stdout}");
}

#[test]
fn the_ported_django_fabfile_asks_for_the_stage_first() {
    let site = Site::new();
    let out = Command::new(example("blog"))
        .args(site.options())
        .arg("deploy")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Fatal error: The command 'deploy' failed because the following required environment variable was not defined:\n    site\n\nTry running one of the following commands prior to this one, to fix the problem:\n    staging\n    production\n"), "{stderr}");
    assert!(!site.path("srv").exists(), "nothing ran");
}

/// What `command` prints on the server, run as the sudo user.
fn server(command: &str) -> String {
    with_settings(as_user(&var("TWILL_TEST_SUDO_USER")), || run(command))
        .unwrap()
        .to_string()
}

/// `manage.py createsuperuser` asks for a name and a hidden password: at a
/// terminal, through the remote pty, the questions show and the answers go.
#[test]
fn the_ported_django_fabfile_creates_a_superuser_at_the_terminal() {
    let site = Site::new();
    site.fab(&["staging", "bootstrap", "deploy"]);
    let mut command = vec![example("blog").display().to_string()];
    command.extend(site.options());
    command.extend(["staging".into(), "createsuperuser".into()]);
    let pane = Pane::start(&command);
    pane.wait_for("out: Username: ");
    pane.type_line("admin");
    pane.wait_for("out: Password: ");
    pane.type_line("correct-horse");
    let shown = pane.exits_with(0);
    assert!(
        shown.contains("[staging.blog.example] out: Superuser created successfully."),
        "{shown}"
    );
    assert!(
        !shown.contains("correct-horse"),
        "the password showed: {shown}"
    );
    assert_eq!(lines(&site.read("shared/superusers")), ["admin"]);
}
