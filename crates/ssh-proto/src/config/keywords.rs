//! The ssh_config(5) keyword table, after OpenSSH's `readconf.c`.

/// How a keyword's arguments are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One argument; the first value seen wins.
    Single,
    /// A list of arguments on one line; the first line seen wins.
    List,
    /// One argument per line; every line adds to the list.
    Accumulate,
    /// Two arguments per line (the forward spec), every line adds
    /// (`RemoteForward` may have one).
    Forward,
    /// The rest of the line, raw (ProxyCommand, LocalCommand, ...).
    Command,
    /// `SendEnv`: names accumulate, `-pattern` removes.
    SendEnv,
    /// `Host`, `Match`, `Include`: handled by the evaluator.
    Host,
    /// See [`Kind::Host`].
    Match,
    /// See [`Kind::Host`].
    Include,
    /// `IgnoreUnknown`: first wins, takes effect at once.
    IgnoreUnknown,
    /// `ProxyJump`: rest of the line; first of ProxyJump/ProxyCommand wins.
    ProxyJump,
    /// `RefuseConnection`: an error when active.
    Refuse,
    /// Accepted and ignored silently (`Protocol`, deprecated options).
    Deprecated,
    /// Accepted with a warning: OpenSSH no longer supports it.
    Unsupported,
}

/// (name as written lowercase, canonical name, kind).
const TABLE: &[(&str, &str, Kind)] = {
    use Kind::*;
    &[
        ("protocol", "protocol", Deprecated),
        ("cipher", "cipher", Deprecated),
        ("fallbacktorsh", "fallbacktorsh", Deprecated),
        ("globalknownhostsfile2", "globalknownhostsfile2", Deprecated),
        ("rhostsauthentication", "rhostsauthentication", Deprecated),
        ("userknownhostsfile2", "userknownhostsfile2", Deprecated),
        ("useroaming", "useroaming", Deprecated),
        ("usersh", "usersh", Deprecated),
        ("useprivilegedport", "useprivilegedport", Deprecated),
        ("afstokenpassing", "afstokenpassing", Unsupported),
        (
            "kerberosauthentication",
            "kerberosauthentication",
            Unsupported,
        ),
        ("kerberostgtpassing", "kerberostgtpassing", Unsupported),
        ("rsaauthentication", "rsaauthentication", Unsupported),
        (
            "rhostsrsaauthentication",
            "rhostsrsaauthentication",
            Unsupported,
        ),
        ("compressionlevel", "compressionlevel", Unsupported),
        ("gssapiauthentication", "gssapiauthentication", Single),
        (
            "gssapidelegatecredentials",
            "gssapidelegatecredentials",
            Single,
        ),
        ("pkcs11provider", "pkcs11provider", Single),
        ("smartcarddevice", "pkcs11provider", Single),
        ("forwardagent", "forwardagent", Single),
        ("forwardx11", "forwardx11", Single),
        ("forwardx11trusted", "forwardx11trusted", Single),
        ("forwardx11timeout", "forwardx11timeout", Single),
        ("exitonforwardfailure", "exitonforwardfailure", Single),
        ("xauthlocation", "xauthlocation", Single),
        ("gatewayports", "gatewayports", Single),
        ("passwordauthentication", "passwordauthentication", Single),
        (
            "kbdinteractiveauthentication",
            "kbdinteractiveauthentication",
            Single,
        ),
        ("kbdinteractivedevices", "kbdinteractivedevices", Single),
        (
            "challengeresponseauthentication",
            "kbdinteractiveauthentication",
            Single,
        ),
        ("skeyauthentication", "kbdinteractiveauthentication", Single),
        ("tisauthentication", "kbdinteractiveauthentication", Single),
        ("pubkeyauthentication", "pubkeyauthentication", Single),
        ("dsaauthentication", "pubkeyauthentication", Single),
        ("hostbasedauthentication", "hostbasedauthentication", Single),
        ("identityfile", "identityfile", Accumulate),
        ("identityfile2", "identityfile", Accumulate),
        ("identitiesonly", "identitiesonly", Single),
        ("certificatefile", "certificatefile", Accumulate),
        ("addkeystoagent", "addkeystoagent", Single),
        ("identityagent", "identityagent", Single),
        ("hostname", "hostname", Single),
        ("hostkeyalias", "hostkeyalias", Single),
        ("proxycommand", "proxycommand", Command),
        ("port", "port", Single),
        ("ciphers", "ciphers", Single),
        ("macs", "macs", Single),
        ("remoteforward", "remoteforward", Forward),
        ("localforward", "localforward", Forward),
        ("permitremoteopen", "permitremoteopen", List),
        ("user", "user", Single),
        ("host", "host", Host),
        ("match", "match", Match),
        ("tag", "tag", Single),
        ("escapechar", "escapechar", Single),
        ("globalknownhostsfile", "globalknownhostsfile", List),
        ("userknownhostsfile", "userknownhostsfile", List),
        ("connectionattempts", "connectionattempts", Single),
        ("batchmode", "batchmode", Single),
        ("checkhostip", "checkhostip", Single),
        ("stricthostkeychecking", "stricthostkeychecking", Single),
        ("compression", "compression", Single),
        ("tcpkeepalive", "tcpkeepalive", Single),
        ("keepalive", "tcpkeepalive", Single),
        ("numberofpasswordprompts", "numberofpasswordprompts", Single),
        ("syslogfacility", "syslogfacility", Single),
        ("loglevel", "loglevel", Single),
        ("logverbose", "logverbose", List),
        ("dynamicforward", "dynamicforward", Accumulate),
        (
            "preferredauthentications",
            "preferredauthentications",
            Single,
        ),
        ("hostkeyalgorithms", "hostkeyalgorithms", Single),
        ("casignaturealgorithms", "casignaturealgorithms", Single),
        ("bindaddress", "bindaddress", Single),
        ("bindinterface", "bindinterface", Single),
        ("clearallforwardings", "clearallforwardings", Single),
        ("enablesshkeysign", "enablesshkeysign", Single),
        ("verifyhostkeydns", "verifyhostkeydns", Single),
        (
            "nohostauthenticationforlocalhost",
            "nohostauthenticationforlocalhost",
            Single,
        ),
        ("rekeylimit", "rekeylimit", List),
        ("connecttimeout", "connecttimeout", Single),
        ("addressfamily", "addressfamily", Single),
        ("serveraliveinterval", "serveraliveinterval", Single),
        ("serveralivecountmax", "serveralivecountmax", Single),
        ("sendenv", "sendenv", SendEnv),
        ("setenv", "setenv", List),
        ("controlpath", "controlpath", Single),
        ("controlmaster", "controlmaster", Single),
        ("controlpersist", "controlpersist", Single),
        ("hashknownhosts", "hashknownhosts", Single),
        ("include", "include", Include),
        ("tunnel", "tunnel", Single),
        ("tunneldevice", "tunneldevice", Single),
        ("localcommand", "localcommand", Command),
        ("permitlocalcommand", "permitlocalcommand", Single),
        ("remotecommand", "remotecommand", Command),
        ("visualhostkey", "visualhostkey", Single),
        ("kexalgorithms", "kexalgorithms", Single),
        ("ipqos", "ipqos", List),
        ("requesttty", "requesttty", Single),
        ("sessiontype", "sessiontype", Single),
        ("stdinnull", "stdinnull", Single),
        ("forkafterauthentication", "forkafterauthentication", Single),
        ("proxyusefdpass", "proxyusefdpass", Single),
        ("canonicaldomains", "canonicaldomains", List),
        (
            "canonicalizefallbacklocal",
            "canonicalizefallbacklocal",
            Single,
        ),
        ("canonicalizehostname", "canonicalizehostname", Single),
        ("canonicalizemaxdots", "canonicalizemaxdots", Single),
        (
            "canonicalizepermittedcnames",
            "canonicalizepermittedcnames",
            List,
        ),
        ("streamlocalbindmask", "streamlocalbindmask", Single),
        ("streamlocalbindunlink", "streamlocalbindunlink", Single),
        ("revokedhostkeys", "revokedhostkeys", List),
        ("fingerprinthash", "fingerprinthash", Single),
        ("updatehostkeys", "updatehostkeys", Single),
        (
            "hostbasedacceptedalgorithms",
            "hostbasedacceptedalgorithms",
            Single,
        ),
        ("hostbasedkeytypes", "hostbasedacceptedalgorithms", Single),
        (
            "pubkeyacceptedalgorithms",
            "pubkeyacceptedalgorithms",
            Single,
        ),
        ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms", Single),
        ("ignoreunknown", "ignoreunknown", IgnoreUnknown),
        ("proxyjump", "proxyjump", ProxyJump),
        ("securitykeyprovider", "securitykeyprovider", Single),
        ("knownhostscommand", "knownhostscommand", Command),
        ("requiredrsasize", "requiredrsasize", Single),
        ("enableescapecommandline", "enableescapecommandline", Single),
        ("obscurekeystroketiming", "obscurekeystroketiming", Single),
        ("channeltimeout", "channeltimeout", List),
        ("versionaddendum", "versionaddendum", Command),
        ("refuseconnection", "refuseconnection", Refuse),
        ("warnweakcrypto", "warnweakcrypto", Single),
    ]
};

/// Keywords whose value is a plain flag (`yes`/`no`/`true`/`false`).
const FLAGS: &[&str] = &[
    "forwardx11",
    "forwardx11trusted",
    "gatewayports",
    "exitonforwardfailure",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "hostbasedauthentication",
    "gssapiauthentication",
    "gssapidelegatecredentials",
    "batchmode",
    "checkhostip",
    "tcpkeepalive",
    "nohostauthenticationforlocalhost",
    "clearallforwardings",
    "enablesshkeysign",
    "identitiesonly",
    "hashknownhosts",
    "permitlocalcommand",
    "visualhostkey",
    "stdinnull",
    "forkafterauthentication",
    "proxyusefdpass",
    "canonicalizefallbacklocal",
    "streamlocalbindunlink",
    "enableescapecommandline",
    "compression",
];

/// Whether `canonical` takes a plain flag.
pub(crate) fn is_flag(canonical: &str) -> bool {
    FLAGS.contains(&canonical)
}

/// Looks a lowercase keyword up: its canonical name and kind.
pub(crate) fn lookup(lower: &str) -> Option<(&'static str, Kind)> {
    TABLE
        .iter()
        .find(|(n, _, _)| *n == lower)
        .map(|&(_, c, k)| (c, k))
}

/// Every keyword name OpenSSH's client accepts (aliases included), in
/// lowercase.
pub fn known_keywords() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, _, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (n, c, k) in TABLE {
            assert_eq!(n.to_ascii_lowercase(), *n);
            let (c2, k2) = lookup(c).unwrap();
            assert_eq!((c2, k2), (*c, *k), "{n}");
        }
        assert_eq!(lookup("nope"), None);
        let mut names: Vec<_> = known_keywords().collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
