//! Unit tests of the evaluation (the comparison with `ssh -G` is in
//! `tests/ssh_config_oracle.rs`).

use super::*;
use std::cell::RefCell;

fn ctx(host: &str) -> Context {
    let mut c = Context::new(host, "alice", "/home/alice");
    c.uid = 1000;
    c.local_hostname = "laptop.local.example".into();
    c
}

fn one(host: &str, text: &str) -> Result<ResolvedConfig, ConfigError> {
    let c = ctx(host);
    let r = Resolver::new(&c).resolve(&[ConfigFile::user("cfg", text)]);
    r
}

/// The keywords of the current ssh_config(5), `.It Cm` entries.
const MAN_KEYWORDS: &str =
    "addkeystoagent addressfamily batchmode bindaddress bindinterface canonicaldomains
canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots
canonicalizepermittedcnames casignaturealgorithms certificatefile channeltimeout
checkhostip ciphers clearallforwardings compression connectionattempts connecttimeout
controlmaster controlpath controlpersist dynamicforward enableescapecommandline
enablesshkeysign escapechar exitonforwardfailure fingerprinthash forkafterauthentication
forwardagent forwardx11 forwardx11timeout forwardx11trusted gatewayports
globalknownhostsfile gssapiauthentication gssapidelegatecredentials hashknownhosts host
hostbasedacceptedalgorithms hostbasedauthentication hostkeyalgorithms hostkeyalias
hostname identitiesonly identityagent identityfile ignoreunknown include ipqos
kbdinteractiveauthentication kbdinteractivedevices kexalgorithms knownhostscommand
localcommand localforward loglevel logverbose macs match nohostauthenticationforlocalhost
numberofpasswordprompts obscurekeystroketiming passwordauthentication permitlocalcommand
permitremoteopen pkcs11provider port preferredauthentications proxycommand proxyjump
proxyusefdpass pubkeyacceptedalgorithms pubkeyauthentication refuseconnection rekeylimit
remotecommand remoteforward requesttty requiredrsasize revokedhostkeys
securitykeyprovider sendenv serveralivecountmax serveraliveinterval sessiontype setenv
stdinnull streamlocalbindmask streamlocalbindunlink stricthostkeychecking syslogfacility
tag tcpkeepalive tunnel tunneldevice updatehostkeys user userknownhostsfile
verifyhostkeydns versionaddendum visualhostkey warnweakcrypto xauthlocation";

#[test]
fn every_documented_keyword_is_known() {
    let known: Vec<&str> = known_keywords().collect();
    for kw in MAN_KEYWORDS.split_whitespace() {
        assert!(known.contains(&kw), "{kw}");
    }
    // And each parses without error (Host/Match/Include aside).
    for kw in MAN_KEYWORDS.split_whitespace() {
        if matches!(kw, "host" | "match" | "include" | "refuseconnection") {
            continue;
        }
        let arg = match kw {
            "localforward" => "x y",
            "port" => "22",
            "setenv" => "x=1",
            k if super::keywords::is_flag(k) => "yes",
            _ => "x",
        };
        let r = one("h", &format!("Host nomatch\n{kw} {arg}\n"));
        assert!(r.is_ok(), "{kw}: {r:?}");
    }
}

#[test]
fn unknown_keyword_message_is_ssh_s() {
    let e = one("h", "Host *\n  Wat yes\n").unwrap_err();
    assert_eq!(
        e.messages,
        [
            "cfg: line 2: Bad configuration option: wat",
            "cfg: terminating, 1 bad configuration options"
        ]
    );
    assert_eq!(e.to_string(), e.messages.join("\n"));
    let ok = one("h", "IgnoreUnknown WAT,other\nWat yes\n").unwrap();
    assert!(ok.get("wat").is_none());
}

#[test]
fn typed_fields_are_expanded() {
    let cfg = one(
        "web",
        "Host web\n Hostname %h.example.com\n User deploy\n Port 2200\n IdentityFile ~/.ssh/id_%r_%h\n \
         CertificateFile %d/c-%p\n ProxyCommand nc %h %p %r %n %%\n RemoteCommand echo %u@%L\n \
         SetEnv A=%h B=x\n IdentityAgent ~/agent.%i\n UserKnownHostsFile none\n ConnectTimeout 1m30s\n \
         ServerAliveInterval 15\n ServerAliveCountMax 4\n PasswordAuthentication no\n BatchMode yes\n",
    )
    .unwrap();
    assert_eq!(cfg.host, "web");
    assert_eq!(cfg.hostname, "web.example.com");
    assert_eq!(cfg.user, "deploy");
    assert_eq!(cfg.port, 2200);
    assert_eq!(
        cfg.identity_files,
        ["/home/alice/.ssh/id_deploy_web.example.com"]
    );
    assert_eq!(cfg.certificate_files, ["/home/alice/c-2200"]);
    assert_eq!(
        cfg.proxy_command.as_deref(),
        Some("nc web.example.com 2200 deploy web %")
    );
    assert_eq!(cfg.remote_command.as_deref(), Some("echo alice@laptop"));
    assert_eq!(cfg.set_env, ["A=web.example.com", "B=x"]);
    assert_eq!(
        cfg.identity_agent.as_deref(),
        Some("/home/alice/agent.1000")
    );
    assert_eq!(cfg.user_known_hosts_files, ["none"]);
    assert_eq!(cfg.connect_timeout, Some(90));
    assert_eq!(cfg.server_alive_interval, Some(15));
    assert_eq!(cfg.server_alive_count_max, Some(4));
    assert_eq!(cfg.password_authentication, Some(false));
    assert_eq!(cfg.batch_mode, Some(true));
    // The raw map keeps what was written.
    assert_eq!(cfg.get("identityfile").unwrap(), ["~/.ssh/id_%r_%h"]);
    assert_eq!(cfg.get("proxycommand").unwrap(), ["nc %h %p %r %n %%"]);
}

#[test]
fn user_takes_tokens_and_env() {
    let c = ctx("h");
    let cfg = Resolver::new(&c)
        .env(|k| (k == "ME").then(|| "env-me".to_string()))
        .resolve(&[ConfigFile::user("cfg", "User ${ME}-%u\n")])
        .unwrap();
    assert_eq!(cfg.user, "env-me-alice");
    let e = Resolver::new(&c)
        .resolve(&[ConfigFile::user("cfg", "User ${NOPE}\n")])
        .unwrap_err();
    assert!(e.to_string().contains("NOPE"), "{e}");
    let e = one("h", "IdentityFile %z\n").unwrap_err();
    assert!(e.to_string().contains("unknown key %z"), "{e}");
}

#[test]
fn command_line_wins() {
    let mut c = ctx("h");
    c.user = Some("cli".into());
    c.port = Some(7);
    c.options = vec!["Hostname=fromcli".into(), "IdentityFile /o".into()];
    let cfg = Resolver::new(&c)
        .resolve(&[ConfigFile::user(
            "cfg",
            "User file\nPort 9\nHostname file\nIdentityFile /f\n",
        )])
        .unwrap();
    assert_eq!(
        (cfg.user.as_str(), cfg.port, cfg.hostname.as_str()),
        ("cli", 7, "fromcli")
    );
    assert_eq!(cfg.identity_files, ["/o", "/f"]);
    c.options = vec!["Nope 1".into()];
    let e = Resolver::new(&c).resolve(&[]).unwrap_err();
    assert_eq!(
        e.messages,
        ["command-line: line 0: Bad configuration option: nope"]
    );
    c.options = vec!["Match all".into()];
    let e = Resolver::new(&c).resolve(&[]).unwrap_err();
    assert_eq!(
        e.messages,
        ["Match directive not supported as a command-line option"]
    );
}

#[test]
fn include_paths_and_scoping() {
    let c = ctx("h");
    let seen = RefCell::new(Vec::new());
    let include = |p: &str| {
        seen.borrow_mut().push(p.to_string());
        match p {
            "/home/alice/.ssh/conf.d/*" => vec![(
                "/home/alice/.ssh/conf.d/a".into(),
                "Host h\nUser inc\n".into(),
            )],
            "/etc/ssh/sys.d/*.conf" => vec![("/etc/ssh/sys.d/x.conf".into(), "Port 2\n".into())],
            _ => Vec::new(),
        }
    };
    let cfg = Resolver::new(&c)
        .include(include)
        .resolve(&[
            ConfigFile::user("u", "Include conf.d/* ~/x_%h /abs/%u\nHostname real\n"),
            ConfigFile::system("s", "Include sys.d/*.conf\n"),
        ])
        .unwrap();
    assert_eq!(cfg.user, "inc");
    assert_eq!(cfg.port, 2);
    // The Host line inside the include did not end the top-level block.
    assert_eq!(cfg.hostname, "real");
    assert_eq!(
        *seen.borrow(),
        [
            "/home/alice/.ssh/conf.d/*",
            "/home/alice/x_h",
            "/abs/alice",
            "/etc/ssh/sys.d/*.conf"
        ]
    );
    let e = Resolver::new(&c)
        .resolve(&[ConfigFile::system("s", "Include ~/x\n")])
        .unwrap_err();
    assert_eq!(e.messages[0], "s line 1: bad include path ~/x.");
}

#[test]
fn include_depth_and_fanout_are_bounded() {
    let c = ctx("h");
    // A file that includes itself.
    let e = Resolver::new(&c)
        .include(|p| vec![(p.to_string(), "Include /self\n".to_string())])
        .resolve(&[ConfigFile::user("top", "Include /self\n")])
        .unwrap_err();
    assert!(
        e.messages.iter().any(|m| m.contains("Too many recursive")),
        "{e}"
    );
    // A file that includes itself twice per line: bounded by MAX_FILES.
    let e = Resolver::new(&c)
        .include(|p| vec![(p.to_string(), "Include /a /b\n".to_string()); 4])
        .resolve(&[ConfigFile::user("top", "Include /a\n")])
        .unwrap_err();
    assert!(!e.messages.is_empty());
}

#[test]
fn match_criteria() {
    let mut c = ctx("Alias");
    c.local_addrs = vec!["192.168.1.5".parse().unwrap()];
    c.remote_command = Some("uptime".into());
    c.version = "OpenSSH_9.9".into();
    let text = "\
Host Alias
  Hostname box.example.com
  Tag t1
Match host=box.example.com
  User m-host
Match localnetwork 192.168.0.0/16,10.0.0.0/8
  Port 2001
Match !localnetwork 192.168.0.0/16
  Port 2002
Match tagged t*
  IdentityFile /tagged
Match command up*
  IdentityFile /command
Match sessiontype exec
  IdentityFile /exec
Match version OpenSSH_9.*
  IdentityFile /version
Match localuser alice user m-host
  IdentityFile /users
Match originalhost ALIAS
  IdentityFile /orig
";
    let cfg = Resolver::new(&c)
        .resolve(&[ConfigFile::user("cfg", text)])
        .unwrap();
    assert_eq!(cfg.user, "m-host");
    assert_eq!(cfg.port, 2001);
    assert_eq!(
        cfg.identity_files,
        ["/tagged", "/command", "/exec", "/version", "/users", "/orig"]
    );
    let e = one("h", "Match localnetwork 10.0.0.1/8\n").unwrap_err();
    assert_eq!(
        e.messages[..2],
        [
            "Invalid network/mask \"10.0.0.1/8\"",
            "cfg line 1: Bad Match condition"
        ]
    );
}

#[test]
fn match_exec_sees_tokens_and_is_skipped_after_a_failure() {
    let c = ctx("h");
    let ran = RefCell::new(Vec::new());
    let cfg = Resolver::new(&c)
        .exec(|cmd| {
            ran.borrow_mut().push(cmd.to_string());
            cmd.starts_with("ok")
        })
        .resolve(&[ConfigFile::user(
            "cfg",
            "User bob\nMatch host nope exec \"never\"\nPort 1\nMatch exec \"ok %h %r %n %u %%\"\nPort 2\n",
        )])
        .unwrap();
    assert_eq!(cfg.port, 2);
    assert_eq!(*ran.borrow(), ["ok h bob h alice %"]);
}

#[test]
fn final_pass() {
    let cfg = one(
        "a",
        "Host a\n Hostname B.example\nHost b.example\n User inb\nMatch final\n Port 5\n",
    )
    .unwrap();
    assert_eq!(
        (cfg.hostname.as_str(), cfg.user.as_str(), cfg.port),
        ("b.example", "inb", 5)
    );
    // Without Match final, Host lines see only the command-line host.
    let cfg = one("a", "Host a\n Hostname b\nHost b\n User inb\n").unwrap();
    assert_eq!(cfg.user, "alice");
    // CanonicalizeHostname also makes a final pass.
    let cfg = one(
        "a",
        "CanonicalizeHostname yes\nMatch canonical\n User canon\n",
    )
    .unwrap();
    assert_eq!(cfg.user, "canon");
}

#[test]
fn accumulation_and_first_wins() {
    let cfg = one(
        "h",
        "SendEnv A B\nSendEnv -A\nSendEnv C\nLocalForward 1 h:1\nLocalForward 1 h:1\nRemoteForward 5\n\
         DynamicForward 9\nUserKnownHostsFile /a /b\nUserKnownHostsFile /c\nCiphers +aes128-ctr\nCiphers x\n",
    )
    .unwrap();
    assert_eq!(cfg.send_env, ["B", "C"]);
    assert_eq!(cfg.local_forwards, ["1 h:1"]);
    assert_eq!(cfg.remote_forwards, ["5"]);
    assert_eq!(cfg.dynamic_forwards, ["9"]);
    assert_eq!(cfg.user_known_hosts_files, ["/a", "/b"]);
    assert_eq!(cfg.ciphers.as_deref(), Some("+aes128-ctr"));
    let e = one("h", "BatchMode maybe\n").unwrap_err();
    assert_eq!(e.messages[0], "cfg line 1: unsupported option \"maybe\".");
    let e = one("h", "UserKnownHostsFile none /x\n").unwrap_err();
    assert!(e.messages[0].contains("must appear alone"));
}

#[test]
fn proxy_jump() {
    let cfg = one(
        "h",
        "ProxyJump u@j1:2222,[::1]:22,ssh://x@j3\nProxyCommand nc\n",
    )
    .unwrap();
    assert_eq!(
        cfg.proxy_jump.as_deref(),
        Some("u@j1:2222,[::1]:22,ssh://x@j3")
    );
    assert_eq!(cfg.proxy_command, None);
    let e = one("h", "ProxyJump a:notaport\n").unwrap_err();
    assert_eq!(
        e.messages[0],
        "cfg line 1: Invalid ProxyJump \"a:notaport\""
    );
    let cfg = one("h", "ProxyJump none\nProxyCommand nc %h\n").unwrap();
    assert_eq!(
        (cfg.proxy_jump, cfg.proxy_command.as_deref()),
        (None, Some("nc h"))
    );
}

#[test]
fn refuse_and_unsupported() {
    let e = one("h", "Host h\n RefuseConnection no way\n").unwrap_err();
    assert_eq!(e.messages, ["cfg line 2: RefuseConnection: no"]);
    assert!(one("h", "Host x\n RefuseConnection no\n").is_ok());
    let cfg = one("h", "VersionAddendum hello there # c\nLocalCommand a # b\n").unwrap();
    assert_eq!(cfg.get("versionaddendum").unwrap(), ["hello there"]);
    assert_eq!(cfg.get("localcommand").unwrap(), ["a # b"]);
    let cfg = one("h", "RSAAuthentication yes\nCipher blowfish\n").unwrap();
    assert_eq!(
        cfg.warnings,
        ["cfg line 1: Unsupported option \"rsaauthentication\""]
    );
}

#[test]
fn limits_and_hostile_input_do_not_panic() {
    let long = format!("User {}\n", "x".repeat(MAX_LINE_LEN));
    assert!(one("h", &long)
        .unwrap_err()
        .to_string()
        .contains("too long"));
    let many = "# c\n".repeat(MAX_LINES + 1);
    assert!(one("h", &many).is_err());
    for text in [
        "\"",
        "=",
        "Host",
        "Host \"",
        "Match !",
        "Match all all",
        "Match exec",
        "Match host=",
        "Include \"\"",
        "IdentityFile %",
        "User é%é",
        "Host é*ü?",
        "SendEnv -",
        "SetEnv =",
        "LocalForward 1",
        "ProxyJump ,",
        "ProxyJump @",
        "ProxyJump [::1",
        "Port 99999999999999999999",
        "\0\u{fffd}\r\n\x0c",
        "Match tagged \"\"",
        "Match command \"\"",
        "Hostname %h%h%h%",
        "ConnectTimeout 99999999999999999999w",
    ] {
        let _ = one("h", text);
        let _ = one("", text);
    }
}

#[test]
fn connection_hash_token() {
    let cfg = one("h", "ControlPath %C\nUser u\nPort 22\n").unwrap();
    // SHA-1 of "laptop.local.example" "h" "22" "u" "".
    let want = super::expand::connection_hash(&["laptop.local.example", "h", "22", "u", ""]);
    assert_eq!(cfg.control_path.as_deref(), Some(want.as_str()));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Lines assembled from config fragments never panic, and an error
    /// always says something.
    #[test]
    fn fragments_never_panic(parts in proptest::collection::vec(0usize..FRAGMENTS.len(), 0..24), host in "[a-zA-Z0-9.%!*?]{0,8}") {
        let text: String = parts.iter().map(|&i| FRAGMENTS[i]).collect();
        let c = ctx(&host);
        let r = Resolver::new(&c)
            .include(|p| vec![(p.to_string(), text.clone())])
            .exec(|cmd| cmd.len() % 2 == 0)
            .env(|n| (n.len() % 2 == 1).then(|| n.to_string()))
            .resolve(&[ConfigFile::user("cfg", text.clone())]);
        if let Err(e) = r {
            proptest::prop_assert!(!e.messages.is_empty());
        }
    }
}

const FRAGMENTS: &[&str] = &[
    "Host ",
    "Match ",
    "Include ",
    "User ",
    "Port ",
    "Hostname ",
    "IdentityFile ",
    "ProxyJump ",
    "ProxyCommand ",
    "SendEnv ",
    "SetEnv ",
    "IgnoreUnknown ",
    "LocalForward ",
    "final ",
    "all ",
    "exec ",
    "host ",
    "!",
    "*",
    "?",
    ",",
    "=",
    "\"",
    "'",
    "\\",
    "#",
    "%h",
    "%C",
    "%",
    "${X}",
    "${",
    "~/",
    "/etc/ssh/x",
    "a",
    "22",
    "none",
    " ",
    "\t",
    "\n",
    "\r\n",
    "canonical ",
    "localnetwork ",
    "10.0.0.0/8",
    "Bogus ",
    "CanonicalizeHostname yes\n",
    "RefuseConnection ",
];
