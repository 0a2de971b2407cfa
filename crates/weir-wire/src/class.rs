//! The classes a flow can be called: Smart IDS's 24-class label space, one enum.
//!
//! Files, the API and the model's metadata carry a class as its name (`"Port Scan"`), as they
//! always have; in code it is a [`Class`], so a misspelt class is a compile error, and a
//! misspelt name read from a file is an error that names it ([`Class::from_str`]), never a
//! silent "no such class".

use std::fmt;
use std::str::FromStr;

macro_rules! classes {
    ($($(#[$doc:meta])* $v:ident = $name:literal,)*) => {
        /// A class. The variants are in the model's output order (alphabetical by name), so
        /// [`Class::index`] is the model's output column.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Class {
            $($(#[$doc])* $v,)*
        }

        impl Class {
            /// Every class, in the model's output order.
            pub const ALL: [Class; N_CLASSES] = [$(Class::$v,)*];
            /// Every class's name, in the model's output order.
            pub const NAMES: [&'static str; N_CLASSES] = [$($name,)*];

            /// Its name: what files, the API and the model's metadata carry.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Class::$v => $name,)*
                }
            }
        }
    };
}

/// How many classes there are.
pub const N_CLASSES: usize = 24;

classes! {
    /// Probing and penetration (UNSW-NB15).
    Analysis = "Analysis",
    /// A remote-control implant.
    Backdoor = "Backdoor",
    /// A bot talking to its controller.
    Bot = "Bot",
    /// A distributed denial of service.
    DDoS = "DDoS",
    /// A denial of service from one or a few sources.
    DoS = "DoS",
    /// GoldenEye's HTTP keep-alive flood.
    DoSGoldenEye = "DoS GoldenEye",
    /// Hulk's HTTP request flood.
    DoSHulk = "DoS Hulk",
    /// SlowHTTPTest's slow bodies and reads.
    DoSSlowHttpTest = "DoS SlowHTTPTest",
    /// Slowloris's slow headers.
    DoSSlowloris = "DoS Slowloris",
    /// An exploit of a service (EternalBlue, Log4Shell, Shellshock, ...).
    Exploits = "Exploits",
    /// FTP password guessing.
    FtpPatator = "FTP Patator",
    /// Malformed and random input (UNSW-NB15).
    Fuzzers = "Fuzzers",
    /// Many short fixed-size exchanges against a cipher (UNSW-NB15).
    Generic = "Generic",
    /// The OpenSSL heartbeat over-read.
    Heartbleed = "Heartbleed",
    /// Data taken out or tunnelled in (DNS tunnels included).
    Infiltration = "Infiltration",
    /// Benign traffic: every other class is an attack.
    Normal = "Normal",
    /// Many ports of one host probed.
    PortScan = "Port Scan",
    /// Many hosts probed (sweeps, service discovery).
    Reconnaissance = "Reconnaissance",
    /// SSH password guessing.
    SshPatator = "SSH Patator",
    /// Code sent to a service (sled, code, return addresses).
    Shellcode = "Shellcode",
    /// Web login guessing.
    WebBruteForce = "Web Attack - Brute Force",
    /// SQL injection in web requests.
    WebSqlInjection = "Web Attack - SQL Injection",
    /// Script injection in web requests.
    WebXss = "Web Attack - XSS",
    /// A self-spreading exploit.
    Worms = "Worms",
}

impl Class {
    /// Its column in the model's output.
    pub const fn index(self) -> u16 {
        self as u16
    }

    /// The class at model output column `i`.
    pub fn at(i: usize) -> Option<Class> {
        Class::ALL.get(i).copied()
    }

    /// The class of this name, if there is one (exact, case-sensitive: the names are data).
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// Whether it is an attack (every class but [`Class::Normal`]).
    pub const fn is_attack(self) -> bool {
        !matches!(self, Class::Normal)
    }

    /// Its family for "was the attack found": every DoS variant counts for DoS, Port Scan and
    /// Reconnaissance for each other (Scan), Bot and Backdoor for each other (C2), the web
    /// attacks for each other (Web Attack); other classes stand alone, under their own name.
    pub const fn family(self) -> &'static str {
        match self {
            Class::DoS
            | Class::DDoS
            | Class::DoSGoldenEye
            | Class::DoSHulk
            | Class::DoSSlowHttpTest
            | Class::DoSSlowloris => Class::DoS.name(),
            Class::PortScan | Class::Reconnaissance => "Scan",
            // A compromised host talking to its controller: whether the implant is called a
            // bot or a RAT is the malware's name, not something its traffic shows.
            Class::Bot | Class::Backdoor => "C2",
            // sqlmap's probes carry script tags as well as SQL: one family for web injections.
            Class::WebBruteForce | Class::WebSqlInjection | Class::WebXss => "Web Attack",
            c => c.name(),
        }
    }
}

impl From<Class> for &'static str {
    fn from(c: Class) -> &'static str {
        c.name()
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownClass(pub String);

impl fmt::Display for UnknownClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown class {:?}: the classes are {}",
            self.0,
            Class::NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownClass {}

impl FromStr for Class {
    type Err = UnknownClass;
    fn from_str(s: &str) -> Result<Self, UnknownClass> {
        Class::from_name(s).ok_or_else(|| UnknownClass(s.to_string()))
    }
}

impl serde::Serialize for Class {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Class {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Class;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a class name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Class, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_unique_and_round_trip() {
        // The model's output order is alphabetical by name: the order models were trained in.
        assert!(
            Class::NAMES.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            Class::NAMES
        );
        for (i, c) in Class::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
            assert_eq!(Class::at(i), Some(*c));
            assert_eq!(c.name().parse::<Class>(), Ok(*c));
            assert_eq!(Class::NAMES[i], c.name());
        }
        assert_eq!(Class::Normal.index(), 15);
    }

    #[test]
    fn unknown_names_are_errors_that_name_them() {
        let e = "Port scan".parse::<Class>().unwrap_err();
        assert!(e.to_string().contains("\"Port scan\""), "{e}");
        assert!(e.to_string().contains("Port Scan"), "{e}");
        assert_eq!(Class::at(N_CLASSES), None);
    }

    #[test]
    fn families_group_variants() {
        assert_eq!(Class::DoSHulk.family(), Class::DDoS.family());
        assert_eq!(Class::PortScan.family(), Class::Reconnaissance.family());
        assert_ne!(Class::Exploits.family(), Class::Worms.family());
        assert_eq!(Class::Bot.family(), Class::Backdoor.family());
        assert_eq!(Class::WebXss.family(), Class::WebSqlInjection.family());
        assert_eq!(Class::Heartbleed.family(), "Heartbleed");
        assert!(!Class::Normal.is_attack() && Class::Worms.is_attack());
    }

    #[test]
    fn serde_carries_the_name() {
        let json = serde_json::to_string(&[Class::PortScan, Class::WebXss]).unwrap();
        assert_eq!(json, r#"["Port Scan","Web Attack - XSS"]"#);
        let back: Vec<Class> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [Class::PortScan, Class::WebXss]);
        let e = serde_json::from_str::<Class>(r#""DoS hulk""#).unwrap_err();
        assert!(e.to_string().contains("DoS hulk"), "{e}");
    }
}
