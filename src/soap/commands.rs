//! The `PROVISIONCMD_*` subcommands of `provisioningExecute`.

use std::fmt;

macro_rules! commands {
    ($( $variant:ident = $name:literal ),* $(,)?) => {
        /// Every `PROVISIONCMD_*` subcommand OneSpan documents for `provisioningExecute`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Command { $($variant,)* }

        impl Command {
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Command::$variant => $name,)* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(Command::$variant),)* _ => None }
            }
        }
    };
}

commands! {
    Activate = "PROVISIONCMD_ACTIVATE",
    Assign = "PROVISIONCMD_ASSIGN",
    DsappActivate = "PROVISIONCMD_DSAPPACTIVATE",
    DsappGenerateActivationData = "PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA",
    DsappRegister = "PROVISIONCMD_DSAPPREGISTER",
    MdlActivate = "PROVISIONCMD_MDL_ACTIVATE",
    MdlAddDevice = "PROVISIONCMD_MDL_ADD_DEVICE",
    MdlRegister = "PROVISIONCMD_MDL_REGISTER",
    Register = "PROVISIONCMD_REGISTER",
    ServerTime = "PROVISIONCMD_SERVER_TIME",
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::from_name(c.name()), Some(*c));
        }
        assert_eq!(Command::from_name("PROVISIONCMD_NOPE"), None);
    }
}
