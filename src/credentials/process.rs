//! Credentials printed by a command of the deployment's own: the CLI profile mode `External`
//! (`process_command`), run the way Alibaba's CLI and credentials libraries run it.
//!
//! The command runs without a shell, with no input and this process's environment. What it
//! writes to standard error is discarded rather than kept for the error message: a helper may
//! write secrets there, and errors reach logs. It must finish within a timeout and print at
//! most 64 KiB, or it is killed.

use std::fmt;
use std::io;
use std::process::{ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::{Credentials, CredentialsError, ProvideCredentials, ProvideFuture, command_line};

/// The most a command may print: credentials are a few hundred bytes.
const MAX_OUTPUT: usize = 64 * 1024;
/// How long a command may run. The official libraries wait 60 s, but the client gives up on a
/// fetch after 15 s: stopping the command first lets the error say what happened.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long credentials printed without an expiration are used before the command runs again.
/// The official libraries run it again for every request, which a cache cannot do; 15 minutes
/// is the shortest STS session, so a fresh token printed without its expiry is never used
/// past it (the client refreshes at half that).
const UNDATED_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The longest pause between checks that the command has exited, once its output is closed.
const MAX_EXIT_POLL: Duration = Duration::from_millis(50);

/// Credentials from a command that prints them as JSON, as the Alibaba Cloud CLI's `External`
/// profile mode names in `process_command`:
///
/// ```json
/// {"mode": "StsToken", "access_key_id": "STS.…", "access_key_secret": "…",
///  "sts_token": "…", "expiration": "2026-09-03T12:00:00Z"}
/// ```
///
/// `mode` is `AK` or `StsToken` (which requires `sts_token`); `expiration` is optional. The
/// command line is split as the official libraries split it (quotes and backslashes, no
/// shell), and the command runs with no input, within a timeout (10 s unless set), printing at
/// most 64 KiB; its error output is discarded, since it may hold secrets. Credentials printed
/// with an expiration are refreshed before it; without one, they are taken to last 15 minutes,
/// so the command runs again about every 7 minutes (the official libraries run it for every
/// request).
///
/// ```
/// use std::time::Duration;
/// use tower_aliyun_captcha::Client;
/// use tower_aliyun_captcha::credentials::ExternalProcess;
///
/// let helper = ExternalProcess::new("/usr/local/bin/vault-aliyun-credential --role captcha")
///     .timeout(Duration::from_secs(5))?;
/// let client = Client::builder().credentials_provider(helper).build()?;
/// # let _ = client;
/// # Ok::<_, tower_aliyun_captcha::client::BuildError>(())
/// ```
#[must_use]
pub struct ExternalProcess {
    /// The program and its arguments, or why the command line cannot be split.
    command: Result<Vec<String>, &'static str>,
    timeout: Duration,
    /// Where the command was configured, to begin errors with.
    origin: String,
}

impl ExternalProcess {
    /// Runs `command_line` (a program and its arguments, split like a POSIX shell would split
    /// them, but never run by one: `"…"` and `'…'` group, `\` escapes, nothing else is
    /// special).
    pub fn new(command_line: impl AsRef<str>) -> Self {
        Self {
            command: command_line::split(command_line.as_ref()),
            timeout: DEFAULT_TIMEOUT,
            origin: "external command".to_owned(),
        }
    }

    /// The command of CLI profile `profile`, or why its command line is unusable.
    pub(crate) fn for_cli_profile(command_line: &str, profile: &str) -> Result<Self, String> {
        let command =
            command_line::split(command_line).map_err(|why| format!("process_command {why}"))?;
        Ok(Self {
            command: Ok(command),
            timeout: DEFAULT_TIMEOUT,
            origin: format!("CLI profile {profile:?}, External command"),
        })
    }

    /// How long the command may run before it is killed, instead of 10 s: more than zero (which
    /// would fail every fetch), else an error. The client gives up on any fetch after 15 s.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, CredentialsError> {
        if timeout.is_zero() {
            return Err(CredentialsError::Invalid(
                "the external command's timeout is zero, which would fail every fetch; leave it \
                 unset for 10 s"
                    .into(),
            ));
        }
        self.timeout = timeout;
        Ok(self)
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let fail = |why: String| CredentialsError::Provider(format!("{}: {why}", self.origin));
        let (program, arguments) = match &self.command {
            Ok(argv) => argv
                .split_first()
                .ok_or_else(|| fail("process_command is empty".into()))?,
            Err(why) => return Err(fail(format!("process_command {why}"))),
        };
        // The program names the command in errors; its arguments may hold a secret.
        let name = super::printable(program);
        let output = self
            .run(program, arguments)
            .await
            .map_err(|why| fail(format!("{name}: {why}")))?;
        credentials_from(&output, SystemTime::now()).map_err(|why| fail(format!("{name}: {why}")))
    }

    /// Runs the command to its end and returns what it printed.
    async fn run(&self, program: &str, arguments: &[String]) -> Result<Zeroizing<Vec<u8>>, String> {
        let mut child = std::process::Command::new(program)
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot be started: {e}"))?;
        let stdout = child.stdout.take();
        let mut child = Running(Some(child));
        let finished = tokio::time::timeout(self.timeout, async {
            let output = match stdout {
                Some(stdout) => read_capped(stdout).await?,
                None => Zeroizing::new(Vec::new()),
            };
            let status =
                (child.exit().await).map_err(|e| format!("its exit cannot be waited for: {e}"))?;
            Ok::<_, String>((status, output))
        })
        .await;
        // Anything but a clean exit leaves `child` to be killed and reaped when dropped.
        match finished {
            Err(_) => Err(format!(
                "did not finish within {} s, and was stopped",
                self.timeout.as_secs_f32()
            )),
            Ok(Err(why)) => Err(why),
            Ok(Ok((status, _))) if !status.success() => Err(format!(
                "{}; what it wrote to standard error is not kept (it may hold secrets): run it by \
                 hand to see why",
                failure(status)
            )),
            Ok(Ok((_, output))) => Ok(output),
        }
    }
}

/// How a command that failed ended.
fn failure(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("ended without an exit status ({status})"),
    }
}

/// A started command: killed and reaped if dropped before it exited, so that a command that
/// hangs, or a fetch that is given up on, leaves nothing running.
struct Running(Option<std::process::Child>);

impl Running {
    /// Waits for the command to exit. Its output is closed by then, so this is short, and a
    /// poll is cheaper than a thread per command.
    async fn exit(&mut self) -> io::Result<ExitStatus> {
        let mut pause = Duration::from_millis(1);
        loop {
            let Some(child) = self.0.as_mut() else {
                return Err(io::Error::other("the command was already waited for"));
            };
            if let Some(status) = child.try_wait()? {
                self.0 = None;
                return Ok(status);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_EXIT_POLL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.0.take() else {
            return;
        };
        let _ = child.kill();
        // Reaped at once after the kill, but `wait` blocks: off the runtime's threads.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || child.wait())),
            Err(_) => drop(child.wait()),
        }
    }
}

fn too_much() -> String {
    format!("printed more than {} KiB", MAX_OUTPUT / 1024)
}

fn unreadable(e: io::Error) -> String {
    format!("its output cannot be read: {e}")
}

/// Reads the command's output to its end, refusing more than [`MAX_OUTPUT`]; the buffer is
/// wiped when dropped, as it holds secrets.
#[cfg(unix)]
async fn read_capped(stdout: ChildStdout) -> Result<Zeroizing<Vec<u8>>, String> {
    let pipe =
        tokio::net::unix::pipe::Receiver::from_owned_fd(stdout.into()).map_err(unreadable)?;
    // Allocated once, so that no copy of the secrets is left behind by a reallocation.
    let mut output = Zeroizing::new(vec![0; MAX_OUTPUT + 1]);
    let mut filled = 0;
    loop {
        pipe.readable().await.map_err(unreadable)?;
        match pipe.try_read(&mut output[filled..]) {
            Ok(0) => break,
            Ok(read) => {
                filled += read;
                if filled > MAX_OUTPUT {
                    return Err(too_much());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(unreadable(e)),
        }
    }
    output.truncate(filled);
    Ok(output)
}

/// Reads the command's output to its end, refusing more than [`MAX_OUTPUT`]; the buffer is
/// wiped when dropped, as it holds secrets.
#[cfg(not(unix))]
async fn read_capped(stdout: ChildStdout) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read as _;
    // No pipe the runtime can wait on here: a blocking read, on the blocking pool.
    tokio::task::spawn_blocking(move || {
        let mut output = Zeroizing::new(Vec::with_capacity(MAX_OUTPUT + 1));
        stdout
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut output)
            .map_err(unreadable)?;
        if output.len() > MAX_OUTPUT {
            return Err(too_much());
        }
        Ok(output)
    })
    .await
    .map_err(|e| unreadable(io::Error::other(e)))?
}

/// What the command prints; other fields are ignored, as the official libraries do.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Printed {
    #[serde(deserialize_with = "super::null_as_default")]
    mode: String,
    #[serde(deserialize_with = "super::null_as_default")]
    access_key_id: String,
    #[serde(deserialize_with = "super::null_as_default")]
    access_key_secret: String,
    #[serde(deserialize_with = "super::null_as_default")]
    sts_token: String,
    #[serde(deserialize_with = "super::null_as_default")]
    expiration: String,
}

/// The credentials in the command's output, checked as the official libraries check them.
fn credentials_from(output: &[u8], now: SystemTime) -> Result<Credentials, String> {
    // The output holds secrets: errors say where it went wrong, never what it says.
    let printed: Printed = serde_json::from_slice(output).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "ends before the JSON does (or is empty)",
            serde_json::error::Category::Syntax => "is not JSON",
            serde_json::error::Category::Data => "is JSON, but not the credentials object",
            serde_json::error::Category::Io => "cannot be read",
        };
        format!(
            "its output {what} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    // serde would also read the fields from an array, in order; the libraries want an object.
    if output.trim_ascii_start().first() != Some(&b'{') {
        return Err("its output is JSON, but not the credentials object".into());
    }
    if printed.access_key_id.is_empty() || printed.access_key_secret.is_empty() {
        return Err("its output has no access_key_id or access_key_secret".into());
    }
    if printed.mode == "StsToken" && printed.sts_token.is_empty() {
        return Err("its output is mode StsToken without an sts_token".into());
    }
    let expiration = if printed.expiration.trim().is_empty() {
        now + UNDATED_LIFETIME
    } else {
        parse_expiration(printed.expiration.trim())
            .ok_or("its output's expiration is not a yyyy-MM-ddTHH:mm:ssZ date")?
    };
    let credentials = Credentials::new(printed.access_key_id, printed.access_key_secret);
    // A token is used whenever there is one, whatever the mode, as the official libraries do.
    let credentials = if printed.sts_token.is_empty() {
        credentials
    } else {
        credentials.with_security_token(printed.sts_token)
    };
    Ok(credentials.with_expiration(expiration))
}

/// `yyyy-MM-ddTHH:mm:ssZ`, with fractional seconds allowed (Go's parser, which the CLI uses,
/// takes them). They are dropped: the expiry can only come earlier.
fn parse_expiration(text: &str) -> Option<SystemTime> {
    let whole_seconds = match text.split_once('.') {
        None => text.to_owned(),
        Some((seconds, fraction)) => {
            let digits = fraction.strip_suffix('Z')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            format!("{seconds}Z")
        }
    };
    crate::protocol::parse_date(&whole_seconds).map(SystemTime::from)
}

impl fmt::Debug for ExternalProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The arguments may hold a secret (a token, a password): the program only.
        let program = self
            .command
            .as_ref()
            .ok()
            .and_then(|argv| argv.first())
            .map(|program| super::printable(program));
        f.debug_struct("ExternalProcess")
            .field("program", &program)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ProvideCredentials for ExternalProcess {
    fn provide_credentials(&self) -> ProvideFuture<'_> {
        Box::pin(self.fetch())
    }

    fn name(&self) -> &'static str {
        "external"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> SystemTime {
        parse_expiration(date).unwrap()
    }

    #[test]
    fn output_is_read_like_the_official_libraries() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let sts = credentials_from(
            br#"{"mode": "StsToken", "access_key_id": "STS.id", "access_key_secret": "s",
                "sts_token": "t", "expiration": "2027-01-15T08:00:00Z", "extra": 1}"#,
            now,
        )
        .unwrap();
        assert_eq!(sts.access_key_id(), "STS.id");
        assert_eq!(sts.security_token().unwrap().expose(), "t");
        assert_eq!(sts.expiration(), Some(at("2027-01-15T08:00:00Z")));

        // Without an expiration: asked again later, not kept forever.
        let ak = credentials_from(
            br#"{"mode": "AK", "access_key_id": "LTAI", "access_key_secret": "s", "sts_token": null}"#,
            now,
        )
        .unwrap();
        assert!(ak.security_token().is_none());
        assert_eq!(ak.expiration(), Some(now + UNDATED_LIFETIME));
    }

    #[test]
    fn bad_output_is_refused_without_repeating_it() {
        let now = SystemTime::now();
        let cases: [(&[u8], &str); 6] = [
            (b"", "ends before"),
            (b"s3cr3t-garbage", "is not JSON (line 1, column 1)"),
            (br#"["s3cr3t"]"#, "not the credentials object"),
            (
                br#"{"mode": "AK", "access_key_id": "s3cr3t"}"#,
                "no access_key_id or access_key_secret",
            ),
            (
                br#"{"mode": "StsToken", "access_key_id": "id", "access_key_secret": "s3cr3t"}"#,
                "without an sts_token",
            ),
            (
                br#"{"access_key_id": "id", "access_key_secret": "s3cr3t", "expiration": "s3cr3t"}"#,
                "not a yyyy-MM-ddTHH:mm:ssZ date",
            ),
        ];
        for (output, expected) in cases {
            let error = credentials_from(output, now).unwrap_err();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("s3cr3t"), "{error}");
        }
    }

    #[test]
    fn fractional_seconds_are_dropped() {
        assert_eq!(
            parse_expiration("2027-01-15T08:00:00.999Z"),
            Some(at("2027-01-15T08:00:00Z"))
        );
        for bad in [
            "2027-01-15T08:00:00.Z",
            "2027-01-15T08:00:00.5",
            "2027-01-15 08:00:00Z",
        ] {
            assert_eq!(parse_expiration(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_shows_the_program_not_its_arguments() {
        let printed = format!("{:?}", ExternalProcess::new("helper --token s3cr3t"));
        assert!(
            printed.contains("helper") && !printed.contains("s3cr3t"),
            "{printed}"
        );
    }
}
