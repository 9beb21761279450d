//! Fabric's output groups and which of them are shown: settings data that
//! `hide`/`show` edit and the printer reads.

/// Fabric's output groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Group {
    Status,
    Aborts,
    Warnings,
    Running,
    Stdout,
    Stderr,
    User,
    Debug,
    Exceptions,
}

const ALL: [(&str, Group); 9] = [
    ("status", Group::Status),
    ("aborts", Group::Aborts),
    ("warnings", Group::Warnings),
    ("running", Group::Running),
    ("stdout", Group::Stdout),
    ("stderr", Group::Stderr),
    ("user", Group::User),
    ("debug", Group::Debug),
    ("exceptions", Group::Exceptions),
];

impl Group {
    /// Parses a comma or space separated list of groups and aliases.
    pub(crate) fn parse_list(text: &str) -> Result<Vec<Group>, String> {
        let mut out = Vec::new();
        for name in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|n| !n.is_empty())
        {
            match name {
                "output" => out.extend([Group::Stdout, Group::Stderr]),
                "everything" => out.extend([
                    Group::Warnings,
                    Group::Running,
                    Group::User,
                    Group::Stdout,
                    Group::Stderr,
                    Group::Exceptions,
                ]),
                "commands" => out.extend([Group::Stdout, Group::Running]),
                _ => match ALL.iter().find(|(n, _)| *n == name) {
                    Some((_, g)) => out.push(*g),
                    None => {
                        return Err(format!(
                            "unknown output group `{name}`; known groups: status, aborts, warnings, running, stdout, stderr, user, debug, exceptions, and the aliases output, everything, commands"
                        ))
                    }
                },
            }
        }
        Ok(out)
    }
}

/// Which groups are shown: a bit per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels(u16);

impl Default for Levels {
    fn default() -> Levels {
        let mut l = Levels(0);
        for (_, g) in ALL {
            l.set(g, !matches!(g, Group::Debug | Group::Exceptions));
        }
        l
    }
}

impl Levels {
    pub(crate) fn get(self, g: Group) -> bool {
        self.0 & (1 << g as u16) != 0
    }
    pub(crate) fn set(&mut self, g: Group, on: bool) {
        if on {
            self.0 |= 1 << g as u16;
        } else {
            self.0 &= !(1 << g as u16);
        }
    }
}
