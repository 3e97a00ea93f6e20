//! An External profile's `process_command`, split into a program and its arguments the way
//! Alibaba's credentials libraries split it. No shell runs the command, so only quotes and
//! backslashes mean anything: no variables, globs, pipes or redirections.

/// Splits `line` by the rules of the platform (POSIX, or Windows where `\` separates paths).
pub(crate) fn split(line: &str) -> Result<Vec<String>, &'static str> {
    split_for(line, cfg!(windows))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoted {
    Not,
    Single,
    Double,
}

/// Whitespace separates arguments. Single quotes keep everything literally. Double quotes keep
/// everything but a backslash before `"`, `\`, `$` or `` ` `` (on Windows, before `"` only),
/// which escapes it. Outside quotes a backslash takes the next character as it is (on Windows
/// it is kept). A backslash before a newline joins the lines, outside single quotes. An empty
/// pair of quotes is an empty argument.
fn split_for(line: &str, windows: bool) -> Result<Vec<String>, &'static str> {
    let mut arguments = Vec::new();
    // `Some` once an argument has begun, even an empty one (`""`).
    let mut argument: Option<String> = None;
    let mut quoted = Quoted::Not;
    let mut chars = line.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (Quoted::Single, '\'') | (Quoted::Double, '"') => quoted = Quoted::Not,
            (Quoted::Single, c) => push(&mut argument, c),
            (Quoted::Double, '\\') => match chars.peek().copied() {
                Some('"') => {
                    chars.next();
                    push(&mut argument, '"');
                }
                Some(next @ ('\\' | '$' | '`')) if !windows => {
                    chars.next();
                    push(&mut argument, next);
                }
                Some('\n') if !windows => {
                    chars.next();
                }
                _ => push(&mut argument, '\\'),
            },
            (Quoted::Double, c) => push(&mut argument, c),
            (Quoted::Not, '\\') if windows => push(&mut argument, '\\'),
            (Quoted::Not, '\\') => match chars.next() {
                None => return Err("ends with a backslash"),
                Some('\n') => {}
                Some(next) => push(&mut argument, next),
            },
            (Quoted::Not, '\'') => {
                argument.get_or_insert_default();
                quoted = Quoted::Single;
            }
            (Quoted::Not, '"') => {
                argument.get_or_insert_default();
                quoted = Quoted::Double;
            }
            (Quoted::Not, c) if c.is_whitespace() => arguments.extend(argument.take()),
            (Quoted::Not, c) => push(&mut argument, c),
        }
    }
    if quoted != Quoted::Not {
        return Err("has a quote that is not closed");
    }
    arguments.extend(argument);
    match arguments.first() {
        Some(program) if !program.is_empty() => Ok(arguments),
        _ => Err("is empty"),
    }
}

fn push(argument: &mut Option<String>, c: char) {
    argument.get_or_insert_default().push(c);
}

#[cfg(test)]
mod tests {
    use super::split_for;

    fn posix(line: &str) -> Result<Vec<String>, &'static str> {
        split_for(line, false)
    }

    #[test]
    fn words_quotes_and_escapes_split_as_the_official_libraries_do() {
        assert_eq!(
            posix("  /usr/bin/helper --role  ecs \t-v ").unwrap(),
            ["/usr/bin/helper", "--role", "ecs", "-v"]
        );
        assert_eq!(
            posix(r#""/opt/my tools/get" --profile 'team a' x"y z"'w' """#).unwrap(),
            ["/opt/my tools/get", "--profile", "team a", "xy zw", ""]
        );
        // Single quotes keep backslashes; double quotes escape only " \ $ `.
        assert_eq!(
            posix(r#"p '\n\"' "\"\\\$\`\n""#).unwrap(),
            ["p", r#"\n\""#, r#""\$`\n"#]
        );
        // Outside quotes a backslash takes the next character; before a newline it joins.
        assert_eq!(
            posix("p a\\ b \\\n c \"d\\\ne\"").unwrap(),
            ["p", "a b", "c", "de"]
        );
        // No shell: its characters are plain text.
        assert_eq!(
            posix("p $HOME *.json | tee ; x").unwrap(),
            ["p", "$HOME", "*.json", "|", "tee", ";", "x"]
        );
    }

    #[test]
    fn windows_paths_keep_their_backslashes() {
        assert_eq!(
            split_for(r#""C:\Program Files\get.exe" C:\tmp\x "a\"b""#, true).unwrap(),
            [r"C:\Program Files\get.exe", r"C:\tmp\x", r#"a"b"#]
        );
    }

    #[test]
    fn broken_or_empty_command_lines_are_refused() {
        assert_eq!(posix("p 'open"), Err("has a quote that is not closed"));
        assert_eq!(posix("p \"open"), Err("has a quote that is not closed"));
        assert_eq!(posix("p \\"), Err("ends with a backslash"));
        for empty in ["", "   ", "\"\" x", "''"] {
            assert_eq!(posix(empty), Err("is empty"), "{empty:?}");
        }
    }
}
