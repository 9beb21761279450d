//! Fabric's `fabric.colors`: wrap text in ANSI colour codes.
//!
//! These return the text with `\x1b[<n>m ... \x1b[0m` around it, or
//! `\x1b[1;<n>m` when bold, like Fabric's helpers. When the `NO_COLOR`
//! environment variable is set (to anything non-empty) they return the text
//! unchanged.
//!
//! ```
//! use twill::colors::{green, red};
//!
//! assert_eq!(green("ok", false), "\x1b[32mok\x1b[0m");
//! assert_eq!(red("failed", true), "\x1b[1;31mfailed\x1b[0m");
//! ```

fn wrap(code: u8, text: &str, bold: bool) -> String {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return text.to_string();
    }
    if bold {
        format!("\x1b[1;{code}m{text}\x1b[0m")
    } else {
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

macro_rules! colors {
    ($($name:ident = $code:expr;)*) => {$(
        #[doc = concat!("Wraps `text` in the ANSI code for ", stringify!($name), " (", stringify!($code), ").")]
        pub fn $name(text: &str, bold: bool) -> String {
            wrap($code, text, bold)
        }
    )*};
}

colors! {
    red = 31;
    green = 32;
    yellow = 33;
    blue = 34;
    magenta = 35;
    cyan = 36;
    white = 37;
}
