//! A typical Fabric 1.x fabfile for a web application, ported to twill.
//!
//! The fabfile, as Fabric users write them:
//!
//! ```python
//! from fabric.api import env, run, sudo, cd, prefix, task, roles, runs_once, execute, put
//!
//! env.roledefs = {"web": [], "db": []}
//! env.project = "/srv/shop"
//!
//! @task
//! def production():
//!     """Use the production servers."""
//!     env.roledefs = {"web": ["web1", "web2"], "db": ["db1"]}
//!     env.user = "deploy"
//!
//! @task
//! @roles("web")
//! def pull(branch="main"):
//!     """Fetch and check out a branch."""
//!     with cd(env.project):
//!         run("git fetch origin && git checkout %s" % branch)
//!
//! @task
//! @roles("web")
//! def install():
//!     """Install the requirements into the virtualenv."""
//!     with cd(env.project), prefix("source venv/bin/activate"):
//!         run("pip install -r requirements.txt")
//!
//! @task
//! @roles("db")
//! @runs_once
//! def migrate():
//!     """Run the database migrations once."""
//!     with cd(env.project), prefix("source venv/bin/activate"):
//!         run("./manage.py migrate --noinput")
//!
//! @task
//! @roles("web")
//! @parallel
//! def restart():
//!     """Restart the application server."""
//!     sudo("systemctl restart shop")
//!
//! @task
//! def deploy(branch="main"):
//!     """Pull, install, migrate and restart.
//!
//!     The branch defaults to main.
//!     """
//!     execute(pull, branch)
//!     execute(install)
//!     execute(migrate)
//!     execute(restart)
//! ```
//!
//! run as `fab production deploy:branch=release-2`. The same in twill, run
//! as `fabfile production deploy:branch=release-2`:
//!
//! ```text
//! cargo run --example fabfile -- -l
//! cargo run --example fabfile -- production deploy:branch=release-2
//! ```
//!
//! `production` here reads the servers from `SHOP_WEB_HOSTS` and
//! `SHOP_DB_HOSTS` (comma-separated) so that the tests can point it at the
//! throwaway sshd; in a real fabfile they would be written out as above.
//! The "application" is simulated with plain shell commands, so the example
//! runs against any host with a shell.

use std::process::ExitCode;

use twill::{cd, env, run, set_env, sudo, task, with_settings, Settings, Tasks};

fn project() -> String {
    env().get_str("project").unwrap_or("/tmp/shop".into())
}

/// `with cd(env.project), prefix("source venv/bin/activate")`.
fn in_virtualenv<T>(f: impl FnOnce() -> twill::Result<T>) -> twill::Result<T> {
    with_settings(cd(project()).prefix("source venv/bin/activate"), f)
}

fn hosts_from(var: &str) -> Vec<String> {
    std::env::var(var)
        .unwrap_or_default()
        .split(',')
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect()
}

task! {
    /// Use the production servers.
    fn production() -> twill::Result<()> {
        set_env(
            Settings::new()
                .roledefs([("web", hosts_from("SHOP_WEB_HOSTS")), ("db", hosts_from("SHOP_DB_HOSTS"))])
                .set("stage", "production"),
        );
        Ok(())
    }
}

task! {
    /// Fetch and check out a branch.
    #[roles("web")]
    fn pull(branch: String = "main") -> twill::Result<()> {
        run(format!("mkdir -p {0}/venv/bin && touch {0}/venv/bin/activate && echo {branch} > {0}/BRANCH", project()))?;
        with_settings(cd(project()), || run("echo checked out $(cat BRANCH) on $(hostname)"))?;
        Ok(())
    }
}

task! {
    /// Install the requirements into the virtualenv.
    #[roles("web")]
    fn install() -> twill::Result<()> {
        in_virtualenv(|| run("echo 'requirements installed' > INSTALLED"))?;
        Ok(())
    }
}

task! {
    /// Run the database migrations once.
    #[roles("db")]
    #[runs_once]
    fn migrate() -> twill::Result<()> {
        in_virtualenv(|| run("echo migrated $(cat BRANCH) > MIGRATED && cat MIGRATED"))?;
        Ok(())
    }
}

task! {
    /// Restart the application server.
    #[roles("web")]
    #[parallel]
    fn restart() -> twill::Result<()> {
        sudo(format!("touch {}/RESTARTED && echo restarted as $(whoami)", project()))?;
        Ok(())
    }
}

task! {
    /// Pull, install, migrate and restart.
    ///
    /// The branch defaults to main.
    fn deploy(branch: String = "main") -> twill::Result<()> {
        pull::execute(branch)?;
        install::execute()?;
        migrate::execute()?;
        restart::execute()?;
        Ok(())
    }
}

fn main() -> ExitCode {
    Tasks::new()
        .tasks([
            production::task(),
            pull::task(),
            install::task(),
            migrate::task(),
            restart::task(),
            deploy::task(),
        ])
        .main()
}
