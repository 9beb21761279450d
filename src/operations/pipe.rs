//! Remote commands joined through this process: [`open_process`] gives a
//! running command's standard input and output to the caller, and
//! [`pipe`] streams one host's command into another's.
//!
//! Each command runs on its own thread, in the engine's exchange
//! ([`Ends`]), with the caller's settings installed. Its standard input
//! and output cross to the caller over a socket pair each, so the only
//! buffers are the kernel's (bounded), the engine's read buffer and one
//! chunk held while the reader has no room: a reader that does not read
//! closes the command's window, and the command waits.

use std::io::{Read, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{OpKind, OpRecord};
use crate::operations::dry_run;
use crate::operations::finish_message;
use crate::operations::options::RunOptions;
use crate::operations::session::{connection, current_host, exec_error, Host};
use crate::output::{self, LinePrinter, Pipe};
use crate::result::Output;
use crate::ssh::{self, Exchange, Input, Reply, Stream};
use crate::state::{env, with_settings, Env, Settings};

/// The size of each piece moved: the engine's read size.
const CHUNK: usize = 64 * 1024;

/// The word of this operation in printed lines and messages.
const WHICH: &str = "pipe";

/// A command running on a host, started by [`open_process`]: its
/// standard input and output are here to write and read, as with
/// [`std::process::Child`], and [`wait`](RemoteProcess::wait) gives its
/// result as [`run`](crate::run) would.
///
/// Its standard error is printed as `[host] err: ...` lines while it
/// comes, and kept in the result. Dropping `stdin` ends the command's
/// input; dropping `stdout` stops the command (as a closed pipe would),
/// and so does [`stop`](RemoteProcess::stop). Dropping the process
/// itself stops the command if it still runs, and waits for its end.
#[derive(Debug)]
pub struct RemoteProcess {
    /// The command's standard input; dropping it ends that input.
    pub stdin: Option<RemoteStdin>,
    /// The command's standard output, as it comes.
    pub stdout: Option<RemoteStdout>,
    host: String,
    stop: Arc<StopFlag>,
    thread: Option<JoinHandle<Result<Output>>>,
}

/// The standard input of a [`RemoteProcess`]. Writes wait while the
/// command does not read; once it has ended, they fail (broken pipe).
#[derive(Debug)]
pub struct RemoteStdin(UnixStream);

/// The standard output of a [`RemoteProcess`]: it reads 0 bytes (the end)
/// once the command has ended and everything it wrote has been read.
#[derive(Debug)]
pub struct RemoteStdout(UnixStream);

/// How a [`pipe`] ended: both commands' results.
#[derive(Debug, Clone)]
pub struct PipeOutcome {
    from: Output,
    to: Output,
    bytes: u64,
}

impl PipeOutcome {
    /// The sending command's result (its standard output went to the
    /// other command, so only its standard error is in it).
    pub fn from(&self) -> &Output {
        &self.from
    }

    /// The receiving command's result, with its own output.
    pub fn to(&self) -> &Output {
        &self.to
    }

    /// The bytes that went from one command to the other.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Write for RemoteStdin {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        send(self.0.as_raw_fd(), buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Read for RemoteStdout {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

/// `send(2)` without SIGPIPE: a reader gone is the error `EPIPE`, never a
/// signal that would end the process.
fn send(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: a valid buffer of the given length on an open socket.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The request to stop a command: a flag, and a socket that becomes
/// readable when it is raised, for the engine's wait.
#[derive(Debug)]
struct StopFlag {
    raised: AtomicBool,
    read: UnixStream,
    write: UnixStream,
}

impl StopFlag {
    fn new() -> std::io::Result<StopFlag> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(StopFlag {
            raised: AtomicBool::new(false),
            read,
            write,
        })
    }

    fn raise(&self) {
        self.raised.store(true, Ordering::SeqCst);
        let _ = send(self.write.as_raw_fd(), &[1]);
    }

    fn raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }
}

fn io_error(host: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{WHICH}() on {host}: cannot set up the command's input and output: {e}"),
    )
    .with_host(host)
}

/// Starts `command` on the current host (`host_string`) and returns at
/// once with its standard input and output to write and read: a remote
/// command as part of a local program, or fed from another host's (which
/// [`pipe`] does).
///
/// The real command is built as [`run`](crate::run)'s is (the shell
/// wrapper, [`cd`](crate::cd), [`prefix`](crate::prefix), ...), without
/// a pty, so that bytes pass unchanged and standard error stays apart; it
/// is printed as `[host] pipe: ...`, its standard error as
/// `[host] err: ...` lines, and it is recorded as one `run` operation.
/// [`RemoteProcess::wait`] gives the result: an exit code outside
/// `ok_ret_codes` is an error of kind [`ErrorKind::CommandFailed`] naming
/// the host, the command and the code (with `warn_only`, a warning and
/// `Ok`). The `command_timeout` setting applies, and Ctrl-C stops it.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use twill::{open_process, Settings};
///
/// let _host = twill::settings(Settings::new().host_string("deploy@web1"));
/// let mut sort = open_process("sort")?;
/// let mut stdin = sort.stdin.take().unwrap();
/// stdin.write_all(b"pear\napple\n")?;
/// drop(stdin); // the end of its input
/// let mut sorted = String::new();
/// sort.stdout.take().unwrap().read_to_string(&mut sorted)?;
/// sort.wait()?;
/// assert_eq!(sorted, "apple\npear\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_process(command: impl AsRef<str>) -> Result<RemoteProcess> {
    let env = env();
    let host = current_host(&env, WHICH)?;
    spawn(env, host, command.as_ref(), true, true)
}

/// Streams the standard output of one command into the standard input of
/// another, on two hosts (or the same one twice): `from` and `to` are each
/// a host string (`user@host:port`, as `host_string` takes it) and a
/// command. The bytes pass through this process, never through a file:
/// what the receiver does not take yet waits in the sender's window, so
/// memory stays small (a few 64 KiB buffers) whatever the size.
///
/// Each side is started, printed, recorded and judged as
/// [`open_process`] does (the current settings with `host_string` set to
/// its host; each host's connection from the cache). If the receiver ends
/// before the end of the stream (it failed, or read what it wanted), the
/// sender is stopped. If the sender fails, the receiver is stopped
/// without the end of its input, so that it does not take a cut stream
/// for a whole one. The error is the failing side's: its host, its
/// command and its exit code (the sender's first, when both fail on
/// their own). Ctrl-C stops both.
///
/// ```no_run
/// use twill::{pipe, with_settings, Settings};
///
/// let copied = with_settings(Settings::new().user("deploy"), || {
///     pipe(("db1", "mysqldump app"), ("db2", "mysql app"))
/// })?;
/// println!("{} bytes", copied.bytes());
/// # Ok::<(), twill::Error>(())
/// ```
pub fn pipe(from: (&str, &str), to: (&str, &str)) -> Result<PipeOutcome> {
    let side = |(host, command): (&str, &str)| -> Result<(Env, Host, String)> {
        let env = with_settings(Settings::new().host_string(host), env);
        let current = current_host(&env, WHICH)?;
        Ok((env, current, command.to_string()))
    };
    let (from_env, from_host, from_command) = side(from)?;
    let (to_env, to_host, to_command) = side(to)?;
    let mut sender = spawn(from_env, from_host, &from_command, false, true)?;
    let mut receiver = spawn(to_env, to_host, &to_command, true, false)?;

    let mut out = sender.stdout.take().expect("piped");
    let mut input = receiver.stdin.take().expect("piped");
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    let mut receiver_gone = false;
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The sender's side is gone; its result says why.
            Err(_) => break,
        };
        if input.write_all(&buf[..n]).is_err() {
            receiver_gone = true;
            break;
        }
        bytes += n as u64;
    }
    drop(buf);

    if receiver_gone {
        sender.stop();
        drop(out);
        drop(input);
        let to = receiver.wait();
        let from = sender.wait();
        return outcome(from, to, bytes, false);
    }
    drop(out);
    let from = sender.wait();
    let sender_ok = from.is_ok();
    if sender_ok {
        // The end of the stream is the end of the receiver's input.
        drop(input);
    } else {
        receiver.stop();
        drop(input);
    }
    let to = receiver.wait();
    outcome(from, to, bytes, true)
}

/// Both results as one. The error is the failing side's: the sender's
/// first when the stream ended (`sender_first`), the receiver's first
/// when it went away early. A side this pipe stopped because the other
/// ended is not the error; a sender stopped because the receiver had
/// what it wanted and succeeded is not a failure (as in a shell
/// pipeline).
fn outcome(
    from: Result<Output>,
    to: Result<Output>,
    bytes: u64,
    sender_first: bool,
) -> Result<PipeOutcome> {
    let failed = |r: &Result<Output>| r.as_ref().is_err_and(|e| e.kind() != ErrorKind::Stopped);
    let blame_from = if sender_first {
        failed(&from) || !failed(&to) && from.is_err()
    } else {
        !failed(&to) && (failed(&from) || to.is_ok() && from.is_err())
    };
    match (from, to) {
        (Ok(from), Ok(to)) => Ok(PipeOutcome { from, to, bytes }),
        // The receiver had what it wanted, and the sender was stopped.
        (Err(e), Ok(to)) if !sender_first && e.kind() == ErrorKind::Stopped => match e.output() {
            Some(from) => Ok(PipeOutcome {
                from: from.clone(),
                to,
                bytes,
            }),
            None => Err(e),
        },
        (Err(e), _) if blame_from => Err(e),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e),
    }
}

impl RemoteProcess {
    /// Asks the command to stop: SIGTERM, SIGKILL if it is still there a
    /// second later. Its result is then an error of kind
    /// [`ErrorKind::Stopped`], unless it had ended already.
    pub fn stop(&self) {
        self.stop.raise();
    }

    /// The host string the command runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Waits for the command to end (ending its input first, if `stdin`
    /// is still here) and gives its result as [`run`](crate::run) does;
    /// its `stdout` is what was not taken through
    /// [`stdout`](RemoteProcess::stdout), which is nothing while that is
    /// here.
    pub fn wait(mut self) -> Result<Output> {
        self.join()
            .expect("a process is waited for once, by wait or drop")
    }

    fn join(&mut self) -> Option<Result<Output>> {
        drop(self.stdin.take());
        let thread = self.thread.take()?;
        match thread.join() {
            Ok(result) => Some(result),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for RemoteProcess {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
            drop(self.stdout.take());
            let _ = self.join();
        }
    }
}

/// Starts `command` on `host` on a thread of its own. `stdin`: its
/// standard input comes from [`RemoteProcess::stdin`] (else it ends at
/// once); `piped`: its standard output goes to [`RemoteProcess::stdout`]
/// (else it is printed as `[host] out: ...` lines and kept in the result).
fn spawn(env: Env, host: Host, command: &str, stdin: bool, piped: bool) -> Result<RemoteProcess> {
    let name = host.name.clone();
    let opts = RunOptions::new().pty(false).combine_stderr(false);
    let real = opts.real(&env, command, false, None);
    let stop = Arc::new(StopFlag::new().map_err(|e| io_error(&name, e))?);
    let (stdin_user, stdin_engine) = if stdin {
        let (u, e) = UnixStream::pair().map_err(|e| io_error(&name, e))?;
        e.set_nonblocking(true).map_err(|e| io_error(&name, e))?;
        (Some(RemoteStdin(u)), Some(e))
    } else {
        (None, None)
    };
    let (stdout_user, stdout_engine) = if piped {
        let (u, e) = UnixStream::pair().map_err(|e| io_error(&name, e))?;
        e.set_nonblocking(true).map_err(|e| io_error(&name, e))?;
        (Some(RemoteStdout(u)), Some(e))
    } else {
        (None, None)
    };
    let mut ends = Ends {
        stdin: stdin_engine,
        stdin_ended: false,
        stdout: stdout_engine,
        held: Vec::new(),
        held_from: 0,
        stdout_gone: false,
        out_printer: LinePrinter::new(&env, &name, Pipe::Out),
        err_printer: LinePrinter::new(&env, &name, Pipe::Err),
        kept_stdout: Vec::new(),
        stderr: Vec::new(),
        stop: stop.clone(),
        buf: vec![0u8; CHUNK],
    };
    let command = command.to_string();

    let thread = if env.dry_run() {
        std::thread::Builder::new()
            .name(format!("{WHICH} {name}"))
            .spawn(move || {
                let _settings = env.clone().install();
                let result = OpRecord::wrap(&env, OpKind::Run, Some(&host.name), &command, &real, || {
                    dry_run::command(&env, &host.name, WHICH, &command, &opts, false)
                });
                // Nothing runs: the input is taken and thrown away.
                if let Some(mut s) = ends.stdin.take() {
                    let _ = s.set_nonblocking(false);
                    let _ = std::io::copy(&mut s, &mut std::io::sink());
                }
                result
            })
    } else {
        output::running(&env, &name, WHICH, &command, &real);
        let conn = connection(&env, &host).map_err(|e| e.with_command(&command))?;
        std::thread::Builder::new()
            .name(format!("{WHICH} {name}"))
            .spawn(move || {
                let _settings = env.clone().install();
                let host = host.name;
                OpRecord::wrap(&env, OpKind::Run, Some(&host), &command, &real, || {
                    let timeout = env.command_timeout();
                    let exec_opts = ssh::ExecOptions {
                        pty: false,
                        term: None,
                        timeout,
                        despite_interrupt: false,
                    };
                    let status = conn.exec(&real, &exec_opts, &mut ends);
                    ends.out_printer.finish();
                    ends.err_printer.finish();
                    let stopped = ends.stop.raised() || ends.stdout_gone;
                    let stdout = std::mem::take(&mut ends.kept_stdout);
                    let stderr = std::mem::take(&mut ends.stderr);
                    // The reader sees the end, the writer a broken pipe.
                    drop(ends);
                    let result = |code: i32, failed: bool| {
                        Output::new(stdout, stderr, code, failed, &command, &real)
                    };
                    let status = match status {
                        Ok(s) => s,
                        Err(e) => {
                            return Err(exec_error(e, WHICH, &host, &command, timeout, || {
                                result(-1, true)
                            }))
                        }
                    };
                    if status.code.is_none() && stopped {
                        return Err(Error::new(
                            ErrorKind::Stopped,
                            format!("{WHICH}() on {host} was stopped while executing '{command}'"),
                        )
                        .with_host(&host)
                        .with_output(result(-1, true)));
                    }
                    let code = status.code.unwrap_or(-1);
                    let failed = !env.ok_ret_codes().contains(&code);
                    let out = result(code, failed);
                    if !failed {
                        return Ok(out);
                    }
                    let warn_only = env.warn_only();
                    let msg = if warn_only {
                        format!("{WHICH}() received nonzero return code {code} on {host} while executing '{command}'!")
                    } else {
                        format!("{WHICH}() received nonzero return code {code} on {host} while executing!\n\nRequested: {command}\nExecuted: {real}")
                    };
                    finish_message(&env, msg, out, warn_only, Some(&host))
                })
            })
    }
    .map_err(|e| io_error(&name, e))?;
    Ok(RemoteProcess {
        stdin: stdin_user,
        stdout: stdout_user,
        host: name,
        stop,
        thread: Some(thread),
    })
}

/// The engine's side of a [`RemoteProcess`]: output to the caller's
/// socket (or printed), standard error printed and kept, input from the
/// caller's socket, and the stop request.
struct Ends {
    stdin: Option<UnixStream>,
    stdin_ended: bool,
    stdout: Option<UnixStream>,
    /// Output the caller's socket had no room for yet, from `held_from`.
    held: Vec<u8>,
    held_from: usize,
    /// The caller dropped the reader: the command is stopped.
    stdout_gone: bool,
    out_printer: LinePrinter,
    err_printer: LinePrinter,
    /// Standard output when it is printed rather than piped.
    kept_stdout: Vec<u8>,
    stderr: Vec<u8>,
    stop: Arc<StopFlag>,
    buf: Vec<u8>,
}

impl Ends {
    /// Writes what is held to the caller's socket, as much as it takes
    /// now; false when the reader is gone.
    fn flush(&mut self) -> bool {
        let Some(sock) = &self.stdout else {
            return true;
        };
        while self.held_from < self.held.len() {
            match send(sock.as_raw_fd(), &self.held[self.held_from..]) {
                Ok(n) => self.held_from += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    self.stdout_gone = true;
                    self.held.clear();
                    self.held_from = 0;
                    return false;
                }
            }
        }
        self.held.clear();
        self.held_from = 0;
        true
    }
}

impl Exchange for Ends {
    fn output(&mut self, stream: Stream, data: &[u8]) -> Reply {
        match stream {
            Stream::Stderr => {
                self.err_printer.feed(data);
                self.stderr.extend_from_slice(data);
            }
            Stream::Stdout if self.stdout.is_some() => {
                self.held.extend_from_slice(data);
                if !self.flush() {
                    return Reply::Stop;
                }
            }
            Stream::Stdout => {
                self.out_printer.feed(data);
                self.kept_stdout.extend_from_slice(data);
            }
        }
        Reply::Continue
    }

    fn takes_output(&mut self, fds: &mut Vec<RawFd>) -> bool {
        if self.held_from >= self.held.len() {
            return true;
        }
        // A reader gone shows as room: the next flush finds out.
        if !self.flush() || self.held.is_empty() {
            return true;
        }
        if let Some(sock) = &self.stdout {
            fds.push(sock.as_raw_fd());
        }
        false
    }

    fn stop_asked(&mut self, fds: &mut Vec<RawFd>) -> bool {
        if self.stop.raised() || self.stdout_gone {
            return true;
        }
        fds.push(self.stop.read.as_raw_fd());
        false
    }

    fn input_fds(&mut self, fds: &mut Vec<RawFd>) -> Option<Instant> {
        match &self.stdin {
            Some(s) if !self.stdin_ended => fds.push(s.as_raw_fd()),
            // The end of input is to be said at once.
            _ if !self.stdin_ended => return Some(Instant::now()),
            _ => {}
        }
        None
    }

    fn input(&mut self) -> Option<Input> {
        if self.stdin_ended {
            return None;
        }
        let Some(sock) = self.stdin.as_mut() else {
            self.stdin_ended = true;
            return Some(Input::End);
        };
        match sock.read(&mut self.buf) {
            Ok(0) => {
                self.stdin_ended = true;
                Some(Input::End)
            }
            Ok(n) => Some(Input::Bytes(self.buf[..n].to_vec())),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => None,
            Err(_) => {
                self.stdin_ended = true;
                Some(Input::End)
            }
        }
    }
}
