//! `contrib::files`: Fabric's file helpers on real files. The server runs
//! on this machine, so what a helper did is read from the file system
//! here, and what it ran from the lines it printed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde::Serialize;
use twill::contrib::files::{
    append, append_with, comment, comment_with, contains, contains_with, exists, exists_with,
    first, first_with, is_link, sed, sed_with, uncomment, upload_template, upload_template_with,
    AppendOptions, CommentOptions, ContainsOptions, ExistsOptions, SedOptions, TemplateOptions,
};
use twill::{cd, env, run, show, upload_data, with_settings, ErrorKind, Settings, UploadOptions};

use crate::support::{as_user, host_for, in_child, is_child, text, twill, var, RemoteDir};

/// The directory of the test `test` that runs part of itself in a child
/// copy of the test binary ([`in_child`]): made by the test, and found by
/// its child under the same name.
fn shared_dir(test: &str) -> RemoteDir {
    let child = is_child(test);
    let owner = if child {
        std::os::unix::process::parent_id()
    } else {
        std::process::id()
    };
    let path = format!("/tmp/twill-contrib-{owner}-{}", test.replace("::", "-"));
    if !child {
        with_settings(twill(), || run(format!("mkdir {path}"))).unwrap();
    }
    RemoteDir(path)
}

/// Writes `text` to `path` as the user of the current settings.
fn put_text(path: &str, text: &str) {
    upload_data(text, path, &UploadOptions::new()).unwrap();
}

fn passwordless() -> Settings {
    as_user(&var("TWILL_TEST_SUDO_USER"))
}

#[test]
fn exists_is_link_and_first_look_at_real_paths() {
    let d = RemoteDir::new();
    with_settings(twill(), || {
        put_text(&d.path("file.txt"), "x\n");
        put_text(&d.path("with space.conf"), "x\n");
        run(format!("ln -s file.txt {}", d.path("link"))).unwrap();

        assert!(exists(d.path("file.txt")).unwrap());
        assert!(exists(d.path("with space.conf")).unwrap());
        assert!(!exists(d.path("missing")).unwrap());
        assert!(exists("~/.bashrc").unwrap(), "~ expands on the host");
        assert!(
            exists(d.path("*.txt")).unwrap(),
            "a glob expands on the host"
        );
        assert!(with_settings(cd(&d.0), || exists("file.txt")).unwrap());

        assert!(is_link(d.path("link")).unwrap());
        assert!(!is_link(d.path("file.txt")).unwrap());
        assert!(!is_link(d.path("missing")).unwrap());

        let missing = d.path("missing");
        let file = d.path("file.txt");
        assert_eq!(
            first([missing.as_str(), file.as_str(), &d.path("link")]).unwrap(),
            Some(file.clone())
        );
        assert_eq!(first(vec![missing.clone()]).unwrap(), None);

        // A path is a path: what it holds runs nothing (it would run
        // in the test's directory).
        with_settings(cd(&d.0), || {
            let hostile = d.path("x$(touch pwned)`touch pwned2`;touch pwned3");
            assert!(!exists(&hostile).unwrap());
            assert!(!is_link(&hostile).unwrap());
        });
    });
    for name in ["pwned", "pwned2", "pwned3"] {
        assert!(!d.has(name), "{name} was run");
    }

    // Only sudo sees into a root-only directory.
    let root = RemoteDir::owned_by_root();
    fs::write(root.path("secret.conf"), "s\n").unwrap();
    with_settings(passwordless(), || {
        let path = root.path("secret.conf");
        assert!(!exists(&path).unwrap());
        let sudo = ExistsOptions::new().use_sudo(true);
        assert!(exists_with(&path, &sudo).unwrap());
        assert_eq!(
            first_with([root.path("nope").as_str(), &path], &sudo).unwrap(),
            Some(path.clone())
        );
    });
}

#[test]
fn exists_is_quiet_unless_verbose() {
    let out = in_child("contrib_files::exists_is_quiet_unless_verbose", || {
        with_settings(twill(), || {
            exists("/etc/hostname").unwrap();
            exists_with("/no/such/file", &ExistsOptions::new().verbose(true)).unwrap();
            with_settings(show("debug"), || {
                exists_with("/etc/hostname", &ExistsOptions::new().verbose(true))
            })
            .unwrap();
        });
    });
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let h = host_for("twill");
    assert!(
        !stdout.contains("run: stat \"$(echo /etc/hostname)\""),
        "the quiet check printed: {stdout}"
    );
    assert!(
        stdout.contains(&format!("[{h}] run: stat \"$(echo /no/such/file)\"\n")),
        "{stdout}"
    );
    assert!(
        stderr.contains("Warning:") && stderr.contains("stat \"$(echo /no/such/file)\""),
        "{stderr}"
    );
    // With debug shown, the real command: Fabric's, in the shell wrapper.
    assert!(
        stdout.contains(&format!(
            "[{h}] run: /bin/bash -l -c \"stat \\\"\\$(echo /etc/hostname)\\\"\"\n"
        )),
        "{stdout}"
    );
}

#[test]
fn contains_matches_literally_exactly_and_without_case() {
    let d = RemoteDir::new();
    let f = d.path("app.conf");
    with_settings(twill(), || {
        put_text(
            &f,
            "Listen 80\nserver_name example.org;\nprice: $5 (approx.) [x]*+?{1}|^\nsay \"hi\" `now` \\o/ it's\nUPPER case\n",
        );
        assert!(contains(&f, "Listen 80").unwrap());
        assert!(!contains(&f, "Listen 8080").unwrap());
        assert!(contains(&f, "en 8").unwrap(), "anywhere in a line");
        let exact = ContainsOptions::new().exact(true);
        assert!(contains_with(&f, "Listen 80", &exact).unwrap());
        assert!(!contains_with(&f, "Listen", &exact).unwrap());
        assert!(!contains(&f, "upper CASE").unwrap());
        assert!(contains_with(
            &f,
            "upper CASE",
            &ContainsOptions::new().case_sensitive(false)
        )
        .unwrap());
        // Every character is literal when escaped (the default)...
        assert!(contains(&f, "price: $5 (approx.) [x]*+?{1}|^").unwrap());
        assert!(contains(&f, "say \"hi\" `now` \\o/ it's").unwrap());
        assert!(!contains(&f, "example.or.").unwrap());
        // ...and a regular expression when not.
        let regex = ContainsOptions::new().escape(false);
        assert!(contains_with(&f, "^server_name [a-z]+\\.org;$", &regex).unwrap());
        assert!(contains_with(&f, "example.or.", &regex).unwrap());
        assert!(!contains_with(&f, "^Listen 8080$|^nothing$", &regex).unwrap());
        assert!(contains_with(&f, "^(Listen 80|nothing)$", &regex).unwrap());
        // Text that looks like an option.
        put_text(&d.path("rules"), "-A INPUT -j ACCEPT\n");
        assert!(contains(d.path("rules"), "-A INPUT").unwrap());
        // Nothing in the text runs (it would run in the test's directory).
        with_settings(cd(&d.0), || {
            assert!(!contains(&f, "$(touch pwned)`touch pwned2`\"; touch pwned3; \"").unwrap());
            assert!(!contains_with(&f, "$(touch pwned4)'", &regex).unwrap());
        });
    });
    for name in ["pwned", "pwned2", "pwned3", "pwned4"] {
        assert!(!d.has(name), "{name} was run");
    }

    let root = RemoteDir::owned_by_root();
    fs::write(root.path("secret.conf"), "token = abc\n").unwrap();
    with_settings(passwordless(), || {
        let path = root.path("secret.conf");
        assert!(
            !contains(&path, "token").unwrap(),
            "unreadable without sudo"
        );
        assert!(
            contains_with(&path, "token = abc", &ContainsOptions::new().use_sudo(true)).unwrap()
        );
    });
}

#[test]
fn append_adds_each_line_once() {
    const TEST: &str = "contrib_files::append_adds_each_line_once";
    let d = shared_dir(TEST);
    let f = d.path("hosts");
    let out = in_child(TEST, || {
        with_settings(twill(), || {
            put_text(&f, "127.0.0.1 localhost\n");
            append(&f, "10.0.0.5 db").unwrap();
            append(&f, "10.0.0.5 db").unwrap();
            append(
                &f,
                ["10.0.0.6 cache", "127.0.0.1 localhost", "10.0.0.7 web"],
            )
            .unwrap();
            append(&f, vec!["10.0.0.6 cache".to_string()]).unwrap();
            append(&f, "a.*b\n10.0.0.8 queue\n").unwrap();
            append(&f, "a.*b").unwrap();
        });
    });
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(
        d.read("hosts"),
        "127.0.0.1 localhost\n10.0.0.5 db\n10.0.0.6 cache\n10.0.0.7 web\na.*b\n10.0.0.8 queue\n"
    );
    let h = host_for("twill");
    let line = format!("[{h}] run: echo '10.0.0.5 db' >> \"$(echo {f})\"\n");
    assert_eq!(stdout.matches(&line).count(), 1, "{stdout}");
    assert!(!stdout.contains("egrep"), "the check is quiet: {stdout}");

    with_settings(twill(), || {
        // A file that is not there yet is made.
        append(d.path("fresh.txt"), ["first", "second"]).unwrap();
        append(d.path("fresh.txt"), "first").unwrap();
        // partial: a line that starts with the text counts.
        put_text(&d.path("profile"), "export PATH=/usr/bin:/bin\n");
        let partial = AppendOptions::new().partial(true);
        append_with(d.path("profile"), "export PATH=", &partial).unwrap();
        assert_eq!(d.read("profile"), "export PATH=/usr/bin:/bin\n");
        append(d.path("profile"), "export PATH=").unwrap();
        // An empty line is always appended, as in Fabric.
        append(d.path("profile"), "").unwrap();
    });
    assert_eq!(d.read("fresh.txt"), "first\nsecond\n");
    assert_eq!(
        d.read("profile"),
        "export PATH=/usr/bin:/bin\nexport PATH=\n\n"
    );
}

#[test]
fn append_writes_hostile_text_verbatim_and_runs_nothing() {
    let d = RemoteDir::new();
    let lines = [
        "$(touch pwned1)".to_string(),
        "`touch pwned2`".to_string(),
        "it's \"quoted\" and 'single'".to_string(),
        r"back\slash \n \t \\ \$HOME \' end\".to_string(),
        "-n".to_string(),
        "-e \\c no newline".to_string(),
        "; touch pwned3 #".to_string(),
        "'; touch pwned4; echo '".to_string(),
        "\"; touch pwned5; echo \"".to_string(),
        "$HOME ${PATH} %s %% * ? [a]".to_string(),
    ];
    let f = d.path("hostile $(touch pwned6).txt");
    with_settings(twill().cd(&d.0), || {
        append(&f, &lines).unwrap();
        append(&f, &lines).unwrap();
        for line in &lines {
            assert!(
                contains_with(&f, line, &ContainsOptions::new().exact(true)).unwrap(),
                "{line}"
            );
        }
    });
    let mut expected = lines.join("\n");
    expected.push('\n');
    assert_eq!(d.read("hostile $(touch pwned6).txt"), expected);
    for n in 1..=6 {
        assert!(!d.has(&format!("pwned{n}")), "pwned{n} was run");
    }
}

#[test]
fn append_with_sudo_writes_into_a_root_owned_file() {
    let root = RemoteDir::owned_by_root();
    let path = root.path("sysctl.conf");
    fs::write(&path, "vm.swappiness = 60\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    with_settings(passwordless(), || {
        let err = append(&path, "net.core.somaxconn = 1024").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CommandFailed, "{err}");
        let sudo = AppendOptions::new().use_sudo(true);
        append_with(
            &path,
            [
                "vm.swappiness = 60",
                "net.core.somaxconn = 1024",
                "it's $(id)",
            ],
            &sudo,
        )
        .unwrap();
        append_with(&path, "net.core.somaxconn = 1024", &sudo).unwrap();
    });
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "vm.swappiness = 60\nnet.core.somaxconn = 1024\nit's $(id)\n"
    );
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (0, 0o600),
        "still root's"
    );
}

#[test]
fn sed_comment_and_uncomment_edit_in_place_with_backups() {
    const TEST: &str = "contrib_files::sed_comment_and_uncomment_edit_in_place_with_backups";
    let d = shared_dir(TEST);
    let f = d.path("httpd.conf");
    let original =
        "Listen 80\n#Listen 8080\n  # indented option\nServerName http://old.example/\nKEEP me\n";
    let out = in_child(TEST, || {
        with_settings(twill(), || {
            put_text(&f, original);
            sed(&f, "http://old\\.example/", "https://new.example/").unwrap();
        });
    });
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let h = host_for("twill");
    assert!(
        stdout.contains(&format!(
            "[{h}] run: sed -i.bak -r -e 's/http:\\/\\/old\\.example\\//https:\\/\\/new.example\\//g' \"$(echo {f})\"\n"
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("uname"),
        "the platform check is hidden: {stdout}"
    );
    assert_eq!(d.read("httpd.conf.bak"), original);
    assert_eq!(
        d.read("httpd.conf"),
        "Listen 80\n#Listen 8080\n  # indented option\nServerName https://new.example/\nKEEP me\n"
    );

    with_settings(twill(), || {
        // limit: only the lines it matches; another backup suffix.
        let out = sed_with(
            &f,
            "80",
            "81",
            &SedOptions::new().limit("^Listen").backup(".orig"),
        )
        .unwrap();
        assert!(out.succeeded());
        assert_eq!(
            out.command(),
            format!("sed -i.orig -r -e '/^Listen/ s/80/81/g' \"$(echo {f})\"")
        );
        sed_with(&f, "keep", "kept", &SedOptions::new().flags("i").backup("")).unwrap();
        comment(&f, "^Listen 81$").unwrap();
        uncomment(&f, "8080").unwrap();
        uncomment(&f, "indented").unwrap();
        uncomment_with_char(&f);
    });
    assert_eq!(
        d.read("httpd.conf.orig"),
        "Listen 80\n#Listen 8080\n  # indented option\nServerName https://new.example/\nKEEP me\n"
    );
    assert_eq!(
        d.read("httpd.conf"),
        "#Listen 81\nListen 8080\n  indented option\nServerName https://new.example/\nkept me\n"
    );
    assert_eq!(
        d.read("httpd.conf.bak"),
        "#Listen 81\nListen 8080\n  # indented option\nServerName https://new.example/\nkept me\n",
        "each edit keeps the version before it"
    );

    // Patterns and replacements are data: quotes and shell syntax land as
    // text, and sed flags that run commands are refused.
    with_settings(twill().cd(&d.0), || {
        sed(
            &f,
            "^kept me$",
            "it's \"$(touch pwned)\" `touch pwned2` & more",
        )
        .unwrap();
        comment_with(&f, "^it's", &CommentOptions::new().char("// ")).unwrap();
        let err = sed_with(&f, "a", "b", &SedOptions::new().flags("e")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings);
        assert!(err.to_string().contains("the flag `e`"), "{err}");
        assert!(err.host().is_some());
    });
    assert!(
        d.read("httpd.conf")
            .ends_with("// it's \"$(touch pwned)\" `touch pwned2` kept me more\n"),
        "{}",
        d.read("httpd.conf")
    );
    assert!(!d.has("pwned") && !d.has("pwned2"));
}

/// uncomment with another comment character: `;` as in php.ini.
fn uncomment_with_char(f: &str) {
    let ini = format!("{f}.ini");
    put_text(&ini, ";extension=gd\n;  extension=zip\n");
    twill::contrib::files::uncomment_with(&ini, "gd", &CommentOptions::new().char(";")).unwrap();
    assert_eq!(
        run(format!("cat {ini}")).unwrap().stdout_lines(),
        ["extension=gd", ";  extension=zip"]
    );
}

#[test]
fn sed_with_sudo_edits_a_root_owned_file() {
    let root = RemoteDir::owned_by_root();
    let path = root.path("sshd_config");
    fs::write(&path, "#PasswordAuthentication yes\nPort 22\n").unwrap();
    with_settings(passwordless(), || {
        assert!(sed(&path, "^Port 22$", "Port 2222").is_err());
        let sudo = SedOptions::new().use_sudo(true);
        sed_with(
            &path,
            "^#?PasswordAuthentication .*",
            "PasswordAuthentication no",
            &sudo,
        )
        .unwrap();
        comment_with(
            &path,
            "^Port",
            &CommentOptions::new().use_sudo(true).backup(".old"),
        )
        .unwrap();
    });
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "PasswordAuthentication no\n#Port 22\n"
    );
    assert_eq!(
        fs::read_to_string(root.path("sshd_config.bak")).unwrap(),
        "#PasswordAuthentication yes\nPort 22\n"
    );
    assert_eq!(
        fs::read_to_string(root.path("sshd_config.old")).unwrap(),
        "PasswordAuthentication no\nPort 22\n"
    );
    assert_eq!(fs::metadata(&path).unwrap().uid(), 0);
}

#[derive(Serialize)]
struct Site {
    domain: &'static str,
    workers: Vec<u32>,
}

#[test]
fn upload_template_renders_percent_templates_with_the_settings() {
    const TEST: &str = "contrib_files::upload_template_renders_percent_templates_with_the_settings";
    let d = shared_dir(TEST);
    // The templates are local files: here, beside the remote ones.
    let local = Path::new(&d.0).join("local");
    if !is_child(TEST) {
        fs::create_dir(&local).unwrap();
        fs::write(
            local.join("nginx.conf"),
            "server_name %(domain)s;  # for %(who)s\nworkers %(workers)d;\n100%%\n",
        )
        .unwrap();
        fs::set_permissions(local.join("nginx.conf"), fs::Permissions::from_mode(0o751)).unwrap();
    }
    let dest = d.path("nginx.conf");
    let out = in_child(TEST, || {
        with_settings(
            twill()
                .set("domain", "example.org")
                .set("who", "twill")
                .set("workers", 4),
            || {
                let template = local.as_path().join("nginx.conf");
                assert_eq!(upload_template(&template, &dest, &env()).unwrap(), dest);
                with_settings(Settings::new().set("domain", "example.net"), || {
                    upload_template(&template, &dest, &env())
                })
                .unwrap();
            },
        );
    });
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let h = host_for("twill");
    assert_eq!(
        d.read("nginx.conf"),
        "server_name example.net;  # for twill\nworkers 4;\n100%\n"
    );
    assert_eq!(
        d.read("nginx.conf.bak"),
        "server_name example.org;  # for twill\nworkers 4;\n100%\n",
        "the file replaced is kept"
    );
    assert_eq!(
        stdout
            .matches(&format!("[{h}] run: cp \"$(echo {dest})\"{{,.bak}}\n"))
            .count(),
        1,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("[{h}] put: <data> -> {dest}\n")),
        "{stdout}"
    );

    with_settings(twill(), || {
        // Into a directory, under the template's name; a map as the
        // context; no backup; modes.
        run(format!("mkdir {}", d.path("sites"))).unwrap();
        let context = BTreeMap::from([("domain", "example.com"), ("workers", "8")]);
        fs::write(
            local.as_path().join("site.conf"),
            "%(domain)s %(workers)s\n",
        )
        .unwrap();
        let written = upload_template_with(
            "site.conf",
            d.path("sites"),
            &context,
            &TemplateOptions::new()
                .template_dir(local.as_path())
                .mode(0o640)
                .backup(false),
        )
        .unwrap();
        assert_eq!(written, d.path("sites/site.conf"));
        upload_template_with(
            local.as_path().join("nginx.conf"),
            d.path("mirrored.conf"),
            &Site {
                domain: "example.com",
                workers: vec![],
            }
            .workers_as_count(),
            &TemplateOptions::new().mirror_local_mode(true),
        )
        .unwrap();
        // Without a context the template is used as it is.
        upload_template(local.as_path().join("nginx.conf"), d.path("raw.conf"), &()).unwrap();
        assert!(!twill::contrib::files::exists(d.path("sites/site.conf.bak")).unwrap());

        // A name the context does not have: an error naming it, and
        // nothing changes on the host.
        fs::write(local.as_path().join("bad.conf"), "ok\n%(missing_name)s\n").unwrap();
        let err = upload_template_with(
            "bad.conf",
            &dest,
            &context,
            &TemplateOptions::new().template_dir(local.as_path()),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Settings, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("missing_name")
                && msg.contains("line 2")
                && msg.contains(&host_for("twill")),
            "{msg}"
        );
        let err = upload_template(local.as_path().join("nope.conf"), &dest, &context).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    });
    assert_eq!(d.read("sites/site.conf"), "example.com 8\n");
    assert_eq!(
        d.read("mirrored.conf"),
        "server_name example.com;  # for nobody\nworkers 0;\n100%\n"
    );
    assert_eq!(
        d.read("raw.conf"),
        "server_name %(domain)s;  # for %(who)s\nworkers %(workers)d;\n100%%\n"
    );
    let mode = |p: &str| fs::metadata(d.path(p)).unwrap().mode() & 0o777;
    assert_eq!(
        (mode("sites/site.conf"), mode("mirrored.conf")),
        (0o640, 0o751)
    );
    assert_eq!(
        d.read("nginx.conf"),
        "server_name example.net;  # for twill\nworkers 4;\n100%\n"
    );
}

/// A context of another shape for the same template: `workers` as a
/// number.
#[derive(Serialize)]
struct Counted {
    domain: &'static str,
    who: &'static str,
    workers: usize,
}

impl Site {
    fn workers_as_count(&self) -> Counted {
        Counted {
            domain: self.domain,
            who: "nobody",
            workers: self.workers.len(),
        }
    }
}

#[test]
fn upload_template_renders_jinja_and_uploads_with_sudo() {
    let local = tempfile::tempdir().unwrap();
    fs::create_dir(local.path().join("templates")).unwrap();
    fs::write(
        local.path().join("templates/base.j2"),
        "# managed by twill\n{% block body %}{% endblock %}\n",
    )
    .unwrap();
    fs::write(
        local.path().join("templates/app.ini.j2"),
        "{% extends \"base.j2\" %}{% block body %}[app]\ndomain = {{ domain }}\n{% for w in workers %}worker{{ w }} = on\n{% endfor %}quote = {{ \"it's <&>\" }}{% endblock %}\n",
    )
    .unwrap();
    let site = Site {
        domain: "example.org",
        workers: vec![1, 2],
    };
    let root = RemoteDir::owned_by_root();
    let dest = root.path("app.ini");
    fs::write(&dest, "old\n").unwrap();
    with_settings(passwordless().lcd(local.path().to_str().unwrap()), || {
        let opts = TemplateOptions::new()
            .use_jinja(true)
            .template_dir("templates")
            .use_sudo(true)
            .mode(0o600);
        upload_template_with("app.ini.j2", &dest, &site, &opts).unwrap();
        upload_template_with(
            "app.ini.j2",
            root.path("kept-newline.ini"),
            &site,
            &opts.clone().keep_trailing_newline(true).backup(false),
        )
        .unwrap();
        let err = upload_template_with("nope.j2", &dest, &site, &opts).unwrap_err();
        assert!(err.to_string().contains("nope.j2"), "{err}");
    });
    let rendered = "# managed by twill\n[app]\ndomain = example.org\nworker1 = on\nworker2 = on\nquote = it's <&>";
    assert_eq!(fs::read_to_string(&dest).unwrap(), rendered);
    assert_eq!(
        fs::read_to_string(root.path("app.ini.bak")).unwrap(),
        "old\n"
    );
    assert_eq!(
        fs::read_to_string(root.path("kept-newline.ini")).unwrap(),
        format!("{rendered}\n")
    );
    assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o777, 0o600);
}
