//! A fabfile that provisions and deploys a Django site behind nginx and
//! gunicorn, ported line for line from `examples/blog_site/fabfile.py`:
//! Fabric's contrib helpers (`exists`, `append`, `sed`, `upload_template`,
//! `rsync_project`), `reboot`, `require`, tasks that carry their roles into
//! `execute`, and an interactive `manage.py createsuperuser`.
//!
//! ```text
//! cargo run --example blog -- -l
//! cargo run --example blog -- staging bootstrap deploy
//! cargo run --example blog -- production deploy:tag=v1.4 createsuperuser
//! ```
//!
//! `"%(root)s/conf" % env` is written `f("%(root)s/conf")?`, `f` being
//! [`twill::env_format`] (an unknown key is an error, as Python's
//! `KeyError`); `@task` is the `task!` block, and the other decorators are
//! attributes in it.
//!
//! The hosts are names from `~/.ssh/config`, as in the Python. The site in
//! `examples/blog_site` stands in for a Django project: its `manage.py` is
//! a shell script, so that the example runs on any host with a shell and
//! rsync (the tests point the names at the throwaway sshd).

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use twill::contrib::files::{append, exists, sed, upload_template_with, TemplateOptions};
use twill::contrib::project::{rsync_project_with, RsyncOptions};
use twill::{
    cd, env, env_format as f, prefix, reboot_with, require_with, run, set_env, sudo, task,
};
use twill::{with_settings, Output, RebootOptions, RequireOptions, Settings, Tasks};

fn defaults() -> Settings {
    Settings::new()
        .use_ssh_config(true)
        .set("project", "blog")
        .set("root", "/srv/blog")
        .set("nginx_sites", "/etc/nginx/sites-enabled")
        .set("reboot_command", "reboot")
        .set(
            "local_dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/blog_site"),
        )
}

task! {
    /// Use the staging server.
    fn staging() {
        set_env(Settings::new().role("web", ["staging.blog.example"]).role("db", ["staging.blog.example"])
            .set("site", "staging")
            .set("server_name", "staging.blog.example")
            .set("workers", 2));
    }

    /// Use the production servers.
    fn production() {
        set_env(Settings::new().role("web", ["web1.blog.example", "web2.blog.example"]).role("db", ["db1.blog.example"])
            .set("site", "production")
            .set("server_name", "blog.example")
            .set("workers", 8));
    }
}

fn virtualenv() -> twill::Result<Settings> {
    Ok(prefix(f("source %(root)s/venv/bin/activate")?))
}

task! {
    /// Create the directory tree and the virtualenv, and tune the kernel.
    #[roles("web", "db")]
    fn bootstrap() -> twill::Result<()> {
        require_with(["site"], &RequireOptions::new().provided_by(["staging", "production"]))?;
        if !exists(f("%(root)s")?)? {
            sudo(f("mkdir -p %(root)s && chown $SUDO_USER %(root)s")?)?;
        }
        run(f("mkdir -p %(root)s/releases %(root)s/shared/static %(root)s/conf")?)?;
        if !exists(f("%(root)s/venv/bin/activate")?)? {
            run(f("mkdir -p %(root)s/venv/bin")?)?;
            run(f("echo 'export BLOG_VENV=%(root)s/venv' > %(root)s/venv/bin/activate")?)?;
        }
        append(f("%(root)s/conf/sysctl.conf")?, ["vm.swappiness = 10", "net.core.somaxconn = 1024"])?;
        append(f("%(root)s/shared/.env")?, "DJANGO_SETTINGS_MODULE=blog.settings")
    }

    /// Copy the code into a new release and point current at it.
    #[roles("web")]
    fn upload(release: String) -> twill::Result<Output> {
        let path = format!("{}/releases/{release}", f("%(root)s")?);
        rsync_project_with(format!("{path}/"), &RsyncOptions::new().local_dir(f("%(local_dir)s/")?)
            .exclude("*.pyc").exclude("fabfile.py").exclude("deploy").delete(true))?;
        with_settings(cd(&path), || {
            sed("blog/settings.py", "^DEBUG = .*$", "DEBUG = False")?;
            sed("blog/settings.py", "^ALLOWED_HOSTS = .*$", f("ALLOWED_HOSTS = ['%(server_name)s']")?)
        })?;
        run(format!("ln -sfn {path} {}/current", f("%(root)s")?))
    }

    /// Write nginx's and gunicorn's configuration, and enable the site.
    #[roles("web")]
    fn configure() -> twill::Result<Output> {
        let templates = f("%(local_dir)s/deploy")?;
        upload_template_with("nginx.conf", f("%(root)s/conf/nginx.conf")?, &env(), &TemplateOptions::new().template_dir(&templates))?;
        upload_template_with("gunicorn.conf.py", f("%(root)s/conf/gunicorn.conf.py")?, &env(),
            &TemplateOptions::new().template_dir(&templates).use_jinja(true))?;
        sudo(f("ln -sf %(root)s/conf/nginx.conf %(nginx_sites)s/%(project)s")?)
    }

    /// Apply the database migrations, once.
    #[roles("db")]
    #[runs_once]
    fn migrate() -> twill::Result<Output> {
        with_settings(cd(f("%(root)s/current")?).merge(virtualenv()?), || {
            run("./manage.py migrate --noinput")
        })
    }

    /// Reload gunicorn with the new code.
    #[roles("web")]
    fn restart() -> twill::Result<Output> {
        with_settings(cd(f("%(root)s/current")?).merge(virtualenv()?), || {
            run("./manage.py collectstatic --noinput")
        })?;
        sudo(f("echo reloaded by $(whoami) >> %(root)s/shared/reloads")?)
    }

    /// Upload, configure, migrate and restart.
    fn deploy(tag: String = "master") -> twill::Result<()> {
        require_with(["site"], &RequireOptions::new().provided_by(["staging", "production"]))?;
        let release = format!("{}-{tag}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs());
        upload::execute(release)?;
        configure::execute()?;
        migrate::execute()?;
        restart::execute()?;
        Ok(())
    }

    /// Create the first admin account: asks for its name and password.
    #[roles("web")]
    #[runs_once]
    fn createsuperuser() -> twill::Result<Output> {
        with_settings(cd(f("%(root)s/current")?).merge(virtualenv()?), || {
            run("./manage.py createsuperuser")
        })
    }

    /// Install the kernel upgrade and reboot into it.
    #[roles("web", "db")]
    fn upgrade() -> twill::Result<()> {
        sudo(f("echo %(site)s upgraded on $(hostname) >> %(root)s/shared/upgrades")?)?;
        let command = env().get_str("reboot_command").unwrap_or_default();
        reboot_with(std::time::Duration::from_secs(120), &RebootOptions::new().command(command))
    }
}

fn main() -> ExitCode {
    set_env(defaults());
    Tasks::new()
        .tasks([
            staging::task(),
            production::task(),
            bootstrap::task(),
            upload::task(),
            configure::task(),
        ])
        .tasks([
            migrate::task(),
            restart::task(),
            deploy::task(),
            createsuperuser::task(),
            upgrade::task(),
        ])
        .main()
}
