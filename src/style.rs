//! Terminal styling: grade colours, on only for a terminal without `NO_COLOR`.

use hsscan_wire::catalog::Grade;
use std::io::IsTerminal;

/// Whether to colour output written to stdout.
pub fn colour_stdout(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// `text` in the colour of `grade`, or plain.
pub fn grade(text: &str, grade: Option<Grade>, colour: bool) -> String {
    let code = match grade {
        _ if !colour => return text.to_owned(),
        Some(Grade::Insecure) => "31",
        Some(Grade::Weak) => "33",
        Some(Grade::Secure) => "32",
        Some(Grade::Recommended) => "1;32",
        None => return text.to_owned(),
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}
