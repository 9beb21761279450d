"""Provision and deploy the blog: a Django site behind nginx and gunicorn.

    fab staging bootstrap deploy
    fab production deploy:tag=v1.4 createsuperuser
"""
import os
from datetime import datetime

from fabric.api import cd, env, execute, prefix, require, roles, run, runs_once, sudo, task
from fabric.contrib.files import append, exists, sed, upload_template
from fabric.contrib.project import rsync_project
from fabric.operations import reboot

env.use_ssh_config = True
env.project = "blog"
env.root = "/srv/blog"
env.nginx_sites = "/etc/nginx/sites-enabled"
env.reboot_command = "reboot"
env.local_dir = os.path.dirname(os.path.abspath(__file__))


@task
def staging():
    """Use the staging server."""
    env.roledefs = {"web": ["staging.blog.example"], "db": ["staging.blog.example"]}
    env.site = "staging"
    env.server_name = "staging.blog.example"
    env.workers = 2


@task
def production():
    """Use the production servers."""
    env.roledefs = {"web": ["web1.blog.example", "web2.blog.example"], "db": ["db1.blog.example"]}
    env.site = "production"
    env.server_name = "blog.example"
    env.workers = 8


def virtualenv():
    return prefix("source %(root)s/venv/bin/activate" % env)


@task
@roles("web", "db")
def bootstrap():
    """Create the directory tree and the virtualenv, and tune the kernel."""
    require("site", provided_by=[staging, production])
    if not exists(env.root):
        sudo("mkdir -p %(root)s && chown %(user)s %(root)s" % env)
    run("mkdir -p %(root)s/releases %(root)s/shared/static %(root)s/conf" % env)
    if not exists("%(root)s/venv/bin/activate" % env):
        run("mkdir -p %(root)s/venv/bin" % env)
        run("echo 'export BLOG_VENV=%(root)s/venv' > %(root)s/venv/bin/activate" % env)
    append("%(root)s/conf/sysctl.conf" % env, ["vm.swappiness = 10", "net.core.somaxconn = 1024"])
    append("%(root)s/shared/.env" % env, "DJANGO_SETTINGS_MODULE=blog.settings")


@task
@roles("web")
def upload(release):
    """Copy the code into a new release and point current at it."""
    path = "%s/releases/%s" % (env.root, release)
    rsync_project(remote_dir=path + "/", local_dir=env.local_dir + "/",
                  exclude=["*.pyc", "fabfile.py", "deploy"], delete=True)
    with cd(path):
        sed("blog/settings.py", "^DEBUG = .*$", "DEBUG = False")
        sed("blog/settings.py", "^ALLOWED_HOSTS = .*$", "ALLOWED_HOSTS = ['%(server_name)s']" % env)
    run("ln -sfn %s %s/current" % (path, env.root))


@task
@roles("web")
def configure():
    """Write nginx's and gunicorn's configuration, and enable the site."""
    templates = os.path.join(env.local_dir, "deploy")
    upload_template("nginx.conf", "%(root)s/conf/nginx.conf" % env, context=env, template_dir=templates)
    upload_template("gunicorn.conf.py", "%(root)s/conf/gunicorn.conf.py" % env, context=env,
                    template_dir=templates, use_jinja=True)
    sudo("ln -sf %(root)s/conf/nginx.conf %(nginx_sites)s/%(project)s" % env)


@task
@roles("db")
@runs_once
def migrate():
    """Apply the database migrations, once."""
    with cd("%(root)s/current" % env), virtualenv():
        run("./manage.py migrate --noinput")


@task
@roles("web")
def restart():
    """Reload gunicorn with the new code."""
    with cd("%(root)s/current" % env), virtualenv():
        run("./manage.py collectstatic --noinput")
    sudo("echo reloaded by $(whoami) >> %(root)s/shared/reloads" % env)


@task
def deploy(tag="master"):
    """Upload, configure, migrate and restart."""
    require("site", provided_by=[staging, production])
    release = "%s-%s" % (datetime.now().strftime("%Y%m%d%H%M%S"), tag)
    execute(upload, release)
    execute(configure)
    execute(migrate)
    execute(restart)


@task
@roles("web")
@runs_once
def createsuperuser():
    """Create the first admin account: asks for its name and password."""
    with cd("%(root)s/current" % env), virtualenv():
        run("./manage.py createsuperuser")


@task
@roles("web", "db")
def upgrade():
    """Install the kernel upgrade and reboot into it."""
    sudo("echo %(site)s upgraded on $(hostname) >> %(root)s/shared/upgrades" % env)
    reboot(wait=120, command=env.reboot_command)
