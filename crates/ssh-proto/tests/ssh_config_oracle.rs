//! `ssh_proto::config` against OpenSSH: each case writes its files to a
//! temporary directory, runs `ssh -G -F FILE HOST` and compares the
//! keywords the case names (or, when ssh refuses the file, its stderr)
//! with our resolution. `ssh` must be installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use ssh_proto::config::{glob_match, ConfigFile, Context, ResolvedConfig, Resolver};

/// A case: files (the first is given to `-F`; `@DIR@` in contents is the
/// temporary directory), the host, the keywords to compare.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    host: &'static str,
    keys: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "basic host block",
        files: &[("config", "Host web\n  Hostname web.example.com\n  User deploy\n  Port 2222\n")],
        host: "web",
        keys: &["hostname", "user", "port"],
    },
    Case {
        name: "no match keeps defaults",
        files: &[("config", "Host web\n  Hostname web.example.com\n  User deploy\n")],
        host: "db",
        keys: &["hostname", "user", "port"],
    },
    Case {
        name: "equals syntax and case-insensitive keywords",
        files: &[("config", "HOST=web\nhostname=w.example.com\nUSER = bob\nPoRt= 2022\n")],
        host: "web",
        keys: &["hostname", "user", "port"],
    },
    Case {
        name: "first value wins",
        files: &[("config", "Host web\n User first\n Port 1022\nHost *\n User second\n Port 2022\n Hostname other\n")],
        host: "web",
        keys: &["hostname", "user", "port"],
    },
    Case {
        name: "wildcards",
        files: &[("config", "Host *.example.com db?\n User wild\nHost *\n User rest\n")],
        host: "a.example.com",
        keys: &["user"],
    },
    Case {
        name: "question mark wildcard",
        files: &[("config", "Host *.example.com db?\n User wild\nHost *\n User rest\n")],
        host: "db1",
        keys: &["user"],
    },
    Case {
        name: "host negation skips the block",
        files: &[("config", "Host *.example.com !bad.example.com\n User good\nHost *\n User fallback\n")],
        host: "bad.example.com",
        keys: &["user"],
    },
    Case {
        name: "host negation lets others through",
        files: &[("config", "Host !bad.example.com *.example.com\n User good\nHost *\n User fallback\n")],
        host: "ok.example.com",
        keys: &["user"],
    },
    Case {
        name: "comma is not a Host separator",
        files: &[("config", "Host a,b\n User comma\nHost *\n User space\n")],
        host: "a",
        keys: &["user"],
    },
    Case {
        name: "hostname %h token",
        files: &[("config", "Host *\n Hostname %h.internal.example\n")],
        host: "Box1",
        keys: &["hostname"],
    },
    Case {
        name: "comments and quotes",
        files: &[(
            "config",
            "# top comment\n\nHost web # trailing\n  User \"quoted\" # c\n  IdentityFile \"/path with spaces/id\"\n  ProxyCommand nc %h %p # kept\n",
        )],
        host: "web",
        keys: &["user", "identityfile", "proxycommand"],
    },
    Case {
        name: "accumulating identity files",
        files: &[("config", "Host web\n IdentityFile ~/.ssh/id_a\nHost *\n IdentityFile ~/.ssh/id_b\n IdentityFile ~/.ssh/id_a\n IdentityFile %d/id_%r\n")],
        host: "web",
        keys: &["identityfile"],
    },
    Case {
        name: "sendenv accumulates and removes",
        files: &[("config", "Host *\n SendEnv LANG LC_* XX\n SendEnv FOO\n SendEnv -X*\n")],
        host: "h",
        keys: &["sendenv"],
    },
    Case {
        name: "setenv first line wins",
        files: &[("config", "Host *\n SetEnv A=1 B=\"two words\"\n SetEnv C=3\n")],
        host: "h",
        keys: &["setenv"],
    },
    Case {
        name: "forwards accumulate",
        files: &[("config", "Host *\n LocalForward 8080 localhost:80\n LocalForward 8081 localhost:81\n RemoteForward 9090 localhost:90\n DynamicForward 1080\n")],
        host: "h",
        keys: &["localforward#", "remoteforward#", "dynamicforward#"],
    },
    Case {
        name: "proxyjump wins over later proxycommand",
        files: &[("config", "Host *\n ProxyJump me@jump:2222,other\n ProxyCommand nc %h %p\n")],
        host: "h",
        keys: &["proxyjump", "proxycommand"],
    },
    Case {
        name: "proxycommand wins over later proxyjump",
        files: &[("config", "Host *\n ProxyCommand ssh -W %h:%p gw\n ProxyJump jump\n")],
        host: "h",
        keys: &["proxyjump", "proxycommand"],
    },
    Case {
        name: "known hosts files and strict checking",
        files: &[("config", "Host *\n UserKnownHostsFile ~/.ssh/kh_%h %d/kh2 /abs/%r\n StrictHostKeyChecking accept-new\n")],
        host: "h",
        keys: &["userknownhostsfile", "stricthostkeychecking"],
    },
    Case {
        name: "strict checking yes",
        files: &[("config", "Host *\n StrictHostKeyChecking yes\n")],
        host: "h",
        keys: &["stricthostkeychecking"],
    },
    Case {
        name: "algorithm lists",
        files: &[("config", "Host *\n Ciphers aes128-ctr,aes256-gcm@openssh.com\n MACs hmac-sha2-256\n KexAlgorithms curve25519-sha256\n HostKeyAlgorithms ssh-ed25519\n PubkeyAcceptedAlgorithms ssh-ed25519,rsa-sha2-256\n")],
        host: "h",
        keys: &["ciphers", "macs", "kexalgorithms", "hostkeyalgorithms", "pubkeyacceptedalgorithms"],
    },
    Case {
        name: "control path with %C and tokens",
        files: &[("config", "Host *\n ControlPath ~/.ssh/cm-%C-%r@%h:%p-%L-%l-%u-%i-%n\n User cpu\n Port 2200\n")],
        host: "h",
        keys: &["controlpath"],
    },
    Case {
        name: "match host uses the new hostname",
        files: &[("config", "Host alias\n Hostname real.example.com\nMatch host real.example.com\n User viahost\nMatch originalhost alias\n Port 2201\n")],
        host: "alias",
        keys: &["hostname", "user", "port"],
    },
    Case {
        name: "match user and localuser",
        files: &[("config", "Host *\n User admin\nMatch user admin localuser *\n Port 2202\nMatch user nobody\n Port 2203\n")],
        host: "h",
        keys: &["user", "port"],
    },
    Case {
        name: "match negated criteria",
        files: &[("config", "Match !host other* !originalhost x\n User neg\n")],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "match all",
        files: &[("config", "Host nomatch\n User x\nMatch all\n User all\n")],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "match exec true and false",
        files: &[("config", "Match exec false\n User fromfalse\nMatch exec \"true %h\"\n User fromtrue\n Port 2204\n")],
        host: "h",
        keys: &["user", "port"],
    },
    Case {
        name: "match exec skipped after a failed criterion",
        files: &[("config", "Match host nothere exec \"exit 0\"\n User skipped\nMatch !exec \"test %h = h\"\n User inverted\nMatch all\n User last\n")],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "match final second pass",
        files: &[("config", "Match final host real.example.com\n User finaluser\nHost alias\n Hostname REAL.example.com\n")],
        host: "alias",
        keys: &["hostname", "user"],
    },
    Case {
        name: "match canonical only in the final pass",
        files: &[("config", "Match canonical\n User canon\nMatch !canonical\n Port 2205\nMatch final\n IdentityFile /f/%h\n")],
        host: "h",
        keys: &["user", "port", "identityfile"],
    },
    Case {
        name: "host lines see the hostname in the final pass",
        files: &[("config", "Host real\n User seen\nHost alias\n Hostname real\nMatch final\n Port 2206\n")],
        host: "alias",
        keys: &["user", "port", "hostname"],
    },
    Case {
        name: "include glob absolute",
        files: &[
            ("config", "Include @DIR@/conf.d/*.conf\nHost *\n User main\n"),
            ("conf.d/10-a.conf", "Host h\n User fromA\n"),
            ("conf.d/20-b.conf", "Host h\n Port 2207\n User fromB\n"),
            ("conf.d/ignored.txt", "Host *\n User txt\n"),
            ("conf.d/.hidden.conf", "Host *\n User hidden\n"),
        ],
        host: "h",
        keys: &["user", "port"],
    },
    Case {
        name: "include inside a non-matching host block",
        files: &[
            ("config", "Host other\n Include @DIR@/inc\nHost *\n User main\n"),
            ("inc", "Host *\n User included\n"),
        ],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "include does not change the including block",
        files: &[
            ("config", "Host h\n Include @DIR@/inc\n Port 2208\n"),
            ("inc", "Host nomatch\n User x\n"),
        ],
        host: "h",
        keys: &["user", "port"],
    },
    Case {
        name: "nested includes",
        files: &[
            ("config", "Include @DIR@/one\nUser main\n"),
            ("one", "Include @DIR@/two\nPort 2209\n"),
            ("two", "Host h\n User nested\n"),
        ],
        host: "h",
        keys: &["user", "port"],
    },
    Case {
        name: "environment variables in known hosts paths",
        files: &[("config", "Host *\n UserKnownHostsFile ${HOME}/kh_%h\n")],
        host: "h",
        keys: &["userknownhostsfile"],
    },
    Case {
        name: "include matching nothing",
        files: &[("config", "Include @DIR@/none/*.conf\nUser fine\n")],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "unknown keyword is an error",
        files: &[("config", "Host *\n User u\n FooBar yes\n Baz 1\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "unknown keyword in an inactive block is an error too",
        files: &[("config", "Host nomatch\n NotAThing yes\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "ignoreunknown covers it",
        files: &[("config", "IgnoreUnknown Foo*,baz\nHost *\n User u\n FooBar yes\n Baz 1\n")],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "ignoreunknown must come first",
        files: &[("config", "FooBar yes\nIgnoreUnknown foobar\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "unknown keyword in an included file",
        files: &[("config", "Include @DIR@/inc\nUser u\n"), ("inc", "Bogus 1\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "bad port and missing argument",
        files: &[("config", "Port 0\nUser\nPort 70000\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "unsupported and deprecated options",
        files: &[("config", "RSAAuthentication yes\nProtocol 2\nUseRoaming no\nUser u\n")],
        host: "h",
        keys: &["user"],
    },
    Case {
        name: "bad match attribute",
        files: &[("config", "Match nonsense x\n User u\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "aliases fold into the canonical keyword",
        files: &[("config", "Host *\n PubkeyAcceptedKeyTypes ssh-ed25519\n PubkeyAcceptedAlgorithms rsa-sha2-512\n IdentityFile2 /i2\n")],
        host: "h",
        keys: &["pubkeyacceptedalgorithms", "identityfile"],
    },
    Case {
        name: "escaped space and single quotes",
        files: &[("config", "Host *\n IdentityFile /a\\ b/id\n User 'single q'\n")],
        host: "h",
        keys: &["identityfile", "user"],
    },
    Case {
        name: "unterminated quote",
        files: &[("config", "Host *\n User \"open\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "extra arguments",
        files: &[("config", "Host *\n User a b\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "match all combined",
        files: &[("config", "Match all host x\n User u\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "match without an argument",
        files: &[("config", "Match user \"\"\n User u\nMatch\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "host patterns are case-sensitive, match originalhost is not",
        files: &[("config", "Host alias\n User low\nMatch originalhost alias\n Port 2211\n")],
        host: "ALIAS",
        keys: &["user", "port", "hostname"],
    },
    Case {
        name: "bad flag value",
        files: &[("config", "Host *\n BatchMode maybe\n Compression YES\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "crlf line endings and tabs",
        files: &[("config", "Host\th\r\n\tUser\ttabbed\r\n\tPort\t2212\r\n")],
        host: "h",
        keys: &["user", "port"],
    },
    Case {
        name: "commands keep the rest of the line",
        files: &[(
            "config",
            "Host *\n ProxyCommand sh -c \"nc %h %p\"  'x y'\n LocalCommand echo \"%h\" # not a comment\n RemoteCommand echo %h %r %%\n User rc\n",
        )],
        host: "h",
        keys: &["proxycommand", "localcommand", "remotecommand"],
    },
    Case {
        name: "more keywords as written",
        files: &[(
            "config",
            "Host *\n GlobalKnownHostsFile ~/g1 /g2\n CertificateFile /c1\n CertificateFile=/c2\n HostKeyAlias alias1\n PreferredAuthentications publickey,password\n ConnectTimeout 1m30s\n ServerAliveInterval 20\n ServerAliveCountMax 7\n",
        )],
        host: "h",
        keys: &[
            "globalknownhostsfile",
            "certificatefile",
            "hostkeyalias",
            "preferredauthentications",
            "connecttimeout",
            "serveraliveinterval",
            "serveralivecountmax",
        ],
    },
    Case {
        name: "empty quoted argument",
        files: &[("config", "Host *\n User \"\"\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "no argument after keyword",
        files: &[("config", "Host *\n Hostname\n Port =\n")],
        host: "h",
        keys: &[],
    },
    Case {
        name: "proxyjump none lets proxycommand in",
        files: &[("config", "Host *\n ProxyJump none\n ProxyCommand nc %h %p\n")],
        host: "h",
        keys: &["proxycommand"],
    },
];

fn tmp_root() -> PathBuf {
    let p = std::env::temp_dir().join(format!("ssh-config-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A `*`/`?` glob over one directory (the last path component), with
/// the library's `glob_match`.
fn glob(pattern: &str) -> Vec<(String, String)> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy().to_string();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, String)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| glob_match(&e.file_name().to_string_lossy(), &name))
        .filter_map(|e| {
            let p = e.path();
            let c = std::fs::read_to_string(&p).ok()?;
            Some((p.to_string_lossy().to_string(), c))
        })
        .collect();
    v.sort();
    v
}

/// What we print for `key`, as ssh -G does.
fn ours(cfg: &ResolvedConfig, key: &str, home: &str) -> Vec<String> {
    let raw = |k: &str| cfg.get(k).map(<[String]>::to_vec).unwrap_or_default();
    match key {
        "hostname" => vec![cfg.hostname.clone()],
        "user" => vec![cfg.user.clone()],
        "port" => vec![cfg.port.to_string()],
        "identityfile" | "sendenv" | "setenv" => raw(key),
        "userknownhostsfile" => {
            if cfg.user_known_hosts_files.is_empty() {
                vec![format!("{home}/.ssh/known_hosts {home}/.ssh/known_hosts2")]
            } else {
                vec![cfg.user_known_hosts_files.join(" ")]
            }
        }
        "stricthostkeychecking" => vec![match cfg.strict_host_key_checking.as_deref() {
            None | Some("ask") => "ask".into(),
            Some("yes") => "true".into(),
            Some("no" | "off") => "false".into(),
            Some(o) => o.into(),
        }],
        "proxyjump" => cfg.proxy_jump.iter().cloned().collect(),
        "proxycommand" => match (&cfg.proxy_jump, cfg.get("proxycommand")) {
            (None, Some(v)) => v.to_vec(),
            _ => vec![],
        },
        "controlpath" => cfg.control_path.iter().cloned().collect(),
        "remotecommand" => cfg.remote_command.iter().cloned().collect(),
        "connecttimeout" => cfg.connect_timeout.iter().map(u64::to_string).collect(),
        "serveraliveinterval" => cfg
            .server_alive_interval
            .iter()
            .map(u64::to_string)
            .collect(),
        "serveralivecountmax" => cfg
            .server_alive_count_max
            .iter()
            .map(u32::to_string)
            .collect(),
        "certificatefile" => raw(key),
        k if k.ends_with('#') => vec![raw(&k[..k.len() - 1]).len().to_string()],
        k => cfg.get(k).map(|v| vec![v.join(" ")]).unwrap_or_default(),
    }
}

#[test]
fn resolution_matches_ssh_dash_g() {
    let version = Command::new("ssh").arg("-V").output();
    assert!(
        version.is_ok(),
        "ssh is not installed: this test needs OpenSSH's ssh"
    );
    assert!(CASES.len() >= 25);
    let root = tmp_root();
    let user = sh("id -un");
    // ssh takes the home directory from the password database.
    let home = sh("getent passwd \"$(id -u)\" | cut -d: -f6");
    let home = if home.is_empty() {
        std::env::var("HOME").unwrap()
    } else {
        home
    };
    let uid: u32 = sh("id -u").parse().unwrap();
    let local_hostname = sh("hostname");
    let mut failures = Vec::new();
    for (ci, case) in CASES.iter().enumerate() {
        let dir = root.join(format!("case{ci}"));
        let dir_s = dir.to_string_lossy().to_string();
        for (name, contents) in case.files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, contents.replace("@DIR@", &dir_s)).unwrap();
        }
        let main = dir.join(case.files[0].0);
        let main_s = main.to_string_lossy().to_string();
        let out = Command::new("ssh")
            .args(["-G", "-F", &main_s, case.host])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("running ssh -G");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with("Pseudo-terminal"))
            .map(str::to_string)
            .collect();

        let mut ctx = Context::new(case.host, &user, &home);
        ctx.uid = uid;
        ctx.local_hostname = local_hostname.clone();
        let file = ConfigFile::user(&main_s, std::fs::read_to_string(&main).unwrap());
        let ours_r = Resolver::new(&ctx)
            .include(glob)
            .exec(|cmd| {
                Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .env(|k| std::env::var(k).ok())
            .resolve(&[file]);
        match (out.status.success(), ours_r) {
            (false, Err(e)) => {
                if e.messages != stderr {
                    failures.push(format!(
                        "{}: errors differ\n ssh: {stderr:?}\n ours: {:?}",
                        case.name, e.messages
                    ));
                }
            }
            (false, Ok(_)) => failures.push(format!(
                "{}: ssh failed ({stderr:?}), we did not",
                case.name
            )),
            (true, Err(e)) => failures.push(format!("{}: we failed ({e}), ssh did not", case.name)),
            (true, Ok(cfg)) => {
                if cfg.warnings != stderr {
                    failures.push(format!(
                        "{}: warnings differ\n ssh: {stderr:?}\n ours: {:?}",
                        case.name, cfg.warnings
                    ));
                }
                for key in case.keys {
                    let k = key.trim_end_matches('#');
                    let theirs: Vec<String> = stdout
                        .lines()
                        .filter_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(' ')))
                        .map(str::to_string)
                        .collect();
                    let theirs = if key.ends_with('#') {
                        vec![theirs.len().to_string()]
                    } else {
                        theirs
                    };
                    let mine = ours(&cfg, key, &home);
                    if theirs != mine {
                        failures.push(format!(
                            "{}: {key}: ssh {theirs:?}, ours {mine:?}",
                            case.name
                        ));
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
