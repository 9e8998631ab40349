//! Where pods are coordinated through a shared volume: this container's tombstone is
//! written there, and the tombstones of the containers it depends on are watched and
//! reported as they read ("the tombstone of db says ready"). What they mean for this
//! container is decided by the supervisor.
//!
//! The directory is watched with inotify *before* it is scanned, so a tombstone written
//! between the two is seen either way; a death that happened before exeunt started is
//! found by the scan (kubexit saw only events, and missed it).
//!
//! The graveyard is a volume other containers write in, so everything it holds is
//! outside input. It is opened once, without following a symbolic link, and every
//! tombstone is created, renamed and read relative to that descriptor: a directory
//! swapped for a link between a look and a use is never written through. Each turn
//! reads one batch of changes and each changed tombstone once; an overflowed queue
//! means every dep's tombstone is read again.
//!
//! Faults are met where they happen: a graveyard exeunt cannot write in is an error
//! at start, before anything runs; a graveyard that vanishes or is replaced while
//! exeunt runs is opened (or made) again at its path, watched again and scanned
//! again, with a back-off while that fails, and never given up; on a full disk the
//! tombstone is rewritten in place, in the space it already has.

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::{debug, error, info, warn};
use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::tombstone::{self, MAX_SIZE, Tombstone};
use crate::duration::Show;
use crate::event_loop::{self, Events, Interest, Poller, Source, SourceId, Token};
use crate::events::{Death, Event, Milestone, Time};
use crate::plan::Pod;
use crate::timer::Timer;

/// The first wait before the graveyard is opened again after it could not be; it
/// doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The source's descriptors.
const CHANGES: u32 = 0;
const RETRY: u32 = 1;

/// Why the graveyard cannot be used; each shown as one line naming the path.
#[derive(Debug)]
pub enum GraveyardError {
    Create {
        dir: PathBuf,
        error: std::io::Error,
    },
    /// The path is not a directory that can be opened without following a link.
    Open {
        dir: PathBuf,
        problem: String,
    },
    Watch {
        dir: PathBuf,
        error: nix::errno::Errno,
    },
    /// No tombstone can be written: the other containers would never learn of this one.
    NotWritable {
        dir: PathBuf,
        error: std::io::Error,
    },
    /// A directory stands where this container's tombstone goes.
    OwnIsDirectory {
        path: PathBuf,
    },
}

impl fmt::Display for GraveyardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraveyardError::Create { dir, error } => {
                write!(f, "graveyard {}: cannot create it: {error}", dir.display())
            }
            GraveyardError::Open { dir, problem } => write!(f, "graveyard {}: {problem}", dir.display()),
            GraveyardError::Watch { dir, error } => write!(f, "graveyard {}: cannot watch it: {error}", dir.display()),
            GraveyardError::NotWritable { dir, error } => {
                write!(f, "graveyard {}: cannot write tombstones in it: {error}", dir.display())
            }
            GraveyardError::OwnIsDirectory { path } => {
                write!(f, "tombstone {}: is a directory, where this container's tombstone goes", path.display())
            }
        }
    }
}

impl std::error::Error for GraveyardError {}

/// Why a tombstone could not be read.
#[derive(Debug)]
pub enum TombstoneError {
    Symlink,
    Open(std::io::Error),
    Inspect(std::io::Error),
    NotRegular,
    TooLarge,
    Read(std::io::Error),
    NotUtf8,
    /// The text is not a tombstone: the line and what is wrong with it.
    Parse(String),
}

impl fmt::Display for TombstoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TombstoneError::Symlink => f.write_str("is a symbolic link, which is not followed"),
            TombstoneError::Open(e) => write!(f, "cannot open it: {e}"),
            TombstoneError::Inspect(e) => write!(f, "cannot inspect it: {e}"),
            TombstoneError::NotRegular => f.write_str("is not a regular file"),
            TombstoneError::TooLarge => write!(f, "is larger than {MAX_SIZE} bytes"),
            TombstoneError::Read(e) => write!(f, "cannot read it: {e}"),
            TombstoneError::NotUtf8 => f.write_str("is not UTF-8 text"),
            TombstoneError::Parse(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for TombstoneError {}

/// This container's view of the graveyard.
pub struct Graveyard {
    /// Where the pod's containers find the graveyard.
    path: PathBuf,
    /// The graveyard directory as opened: every tombstone is read and written through it.
    dir: OwnedFd,
    name: String,
    /// The containers this one depends on, for birth or for death.
    deps: BTreeSet<String>,
    inotify: Inotify,
    /// The watch on `dir`; None while the directory at `path` is not the one opened.
    watch: Option<WatchDescriptor>,
    /// The watch on the directory above `path`, for the graveyard's own removal or
    /// replacement: the watch on `dir` hears of its removal only once exeunt closes it.
    above: Option<WatchDescriptor>,
    own: Tombstone,
    /// Deps whose tombstone was found to be an earlier pod's, said once each.
    stale: std::cell::RefCell<Vec<String>>,
    /// While the graveyard cannot be opened again at its path: when to try next, and
    /// the wait after that.
    retry: Option<(Time, Duration)>,
    timer: Timer,
    source: SourceId,
}

impl Graveyard {
    /// Opens the graveyard, creating the directory when it is missing, and makes sure
    /// that this container's tombstone can be written there: a pod whose containers
    /// cannot learn of each other's deaths would never end.
    pub fn open(pod: &Pod) -> Result<Graveyard, GraveyardError> {
        let path = &pod.graveyard;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|error| GraveyardError::Watch { dir: path.clone(), error })?;
        let timer = Timer::new().map_err(|error| GraveyardError::Watch { dir: path.clone(), error })?;
        let dir = open_dir(path)?;
        let watch = watch(&inotify, path, &dir)?;
        let above = watch_above(&inotify, path)?;
        // A symbolic link in the tombstone's place is replaced, never followed; a
        // directory there would make every write fail.
        if is_directory_at(dir.as_fd(), &pod.name) {
            return Err(GraveyardError::OwnIsDirectory { path: path.join(&pod.name) });
        }
        let graveyard = Graveyard {
            path: path.clone(),
            dir,
            name: pod.name.clone(),
            deps: pod.death_deps.iter().chain(&pod.birth_deps).cloned().collect(),
            inotify,
            watch: Some(watch),
            above,
            own: Tombstone { pod: pod.run.clone(), ..Tombstone::default() },
            stale: std::cell::RefCell::new(Vec::new()),
            retry: None,
            timer,
            source: SourceId(0),
        };
        // Written now, with nothing on it yet: this proves the graveyard writable, and
        // gives the tombstone the space it is rewritten in should the disk fill up
        // before this container has anything to record (a job that fills the volume
        // as soon as it starts).
        graveyard.store().map_err(|error| GraveyardError::NotWritable { dir: path.clone(), error })?;
        Ok(graveyard)
    }

    /// Watches the graveyard's changes and its retry timer as `source`.
    pub fn watch_on(&mut self, poller: &Poller, source: SourceId) -> Result<(), Errno> {
        self.source = source;
        poller.watch(self.inotify.as_fd(), Token { source, key: CHANGES }, Interest::Readable)?;
        poller.watch(self.timer.as_fd(), Token { source, key: RETRY }, Interest::Readable)
    }

    /// Reads every dep's tombstone as it is now. Call once, after `open`.
    pub fn scan(&mut self) -> Vec<Event> {
        let mut events = Events::new();
        self.look_at_every_dep(&mut events);
        events.into()
    }

    /// The graveyard changed: reads one batch of changes, then each tombstone that was
    /// written, once.
    fn on_changes(&mut self, events: &mut Events) {
        let changes = match self.inotify.read_events() {
            Ok(changes) => changes,
            Err(Errno::EAGAIN) => return,
            Err(e) => return warn!("graveyard {}: reading its changes failed: {e}", self.path.display()),
        };
        let mut written = BTreeSet::new();
        let (mut lost, mut everything) = (None, false);
        for change in changes {
            if change.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                // Changes were dropped: which tombstones they were about, nobody knows.
                everything = true;
                continue;
            }
            if self.above.is_some() && Some(change.wd) == self.above {
                // Something came or went at the graveyard's name: is it still the one opened?
                if change.name.as_deref() == self.path.file_name() && self.watch.is_some() && !self.still_at_path() {
                    lost = Some(!change.mask.contains(AddWatchFlags::IN_DELETE));
                }
                continue;
            }
            if Some(change.wd) != self.watch {
                // The last changes of a directory exeunt no longer follows.
                continue;
            }
            if change.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
                lost = Some(change.mask.contains(AddWatchFlags::IN_MOVE_SELF));
            } else if let Some(name) = change.name.as_deref().and_then(OsStr::to_str)
                && let Some(dep) = self.deps.get(name)
            {
                written.insert(dep.clone());
            }
        }
        if let Some(moved) = lost
            && self.watch.is_some()
        {
            warn!("graveyard {} was {}: making it again", self.path.display(), if moved { "moved" } else { "removed" });
            if let Some(watch) = self.watch.take() {
                let _ = self.inotify.rm_watch(watch);
            }
            // Opening it again reads every dep's tombstone.
            if let Some(Err(e)) = self.open_again(events) {
                self.cannot_write(&e);
            }
            return;
        }
        if everything {
            warn!(
                "graveyard {}: more changes came than were queued: reading every tombstone again",
                self.path.display()
            );
            return self.look_at_every_dep(events);
        }
        for dep in &written {
            self.look_at(dep, events);
        }
    }

    /// Opens the graveyard at its path again (making it when it is missing) and follows
    /// that one from now on: this container's tombstone is written again, and the deps'
    /// are read (another container may have made it again first). While that fails,
    /// it is tried again with a back-off, and tombstones stay in the directory opened
    /// before, wherever it is now. Some(how the tombstone's write went) when it opened.
    fn open_again(&mut self, events: &mut Events) -> Option<std::io::Result<()>> {
        let opened = open_dir(&self.path).and_then(|dir| watch(&self.inotify, &self.path, &dir).map(|w| (dir, w)));
        match opened {
            Ok((dir, watch)) => {
                if self.retry.take().is_some() {
                    info!("graveyard {} can be followed again", self.path.display());
                }
                self.timer.arm(None, "the graveyard's retry");
                (self.dir, self.watch) = (dir, Some(watch));
                let stored = self.store();
                self.look_at_every_dep(events);
                Some(stored)
            }
            Err(e) => {
                let wait = self.retry.map_or(FIRST_RETRY, |(_, wait)| wait);
                error!("{e}: trying again in {}", Show(wait));
                let at = event_loop::now() + wait;
                self.retry = Some((at, (wait * 2).min(MAX_RETRY)));
                self.timer.arm(Some(at), "the graveyard's retry");
                None
            }
        }
    }

    fn cannot_write(&self, e: &std::io::Error) {
        error!("tombstone {}: cannot write it: {e}", self.path.join(&self.name).display());
    }

    /// Whether the graveyard's path still leads to the directory opened.
    fn still_at_path(&self) -> bool {
        same_file(self.dir.as_fd(), &self.path)
    }

    fn look_at_every_dep(&self, events: &mut Events) {
        for dep in &self.deps {
            self.look_at(dep, events);
        }
    }

    /// Reads one dep's tombstone and reports what it says.
    fn look_at(&self, dep: &str, events: &mut Events) {
        match read_at(Some(self.dir.as_fd()), Path::new(dep)) {
            Ok(Some(tombstone)) => {
                debug!("tombstone {}: {tombstone:?}", self.path.join(dep).display());
                events.push_back(self.report(dep, tombstone));
            }
            Ok(None) => {}
            Err(e) => error!("tombstone {}: {e}; it is read again when it changes", self.path.join(dep).display()),
        }
    }

    /// Writes this container's milestone into its tombstone, atomically: the new text
    /// goes to a temporary file in the graveyard, which is then renamed into place.
    /// What the deps' tombstones say goes into `events` when the graveyard had to be
    /// opened again for it.
    pub fn record(&mut self, milestone: Milestone, events: &mut Events) {
        let now = tombstone::now();
        match milestone {
            Milestone::Born => self.own.born = Some(now),
            Milestone::Ready => self.own.ready = Some(now),
            // Tombstones keep no stop time.
            Milestone::Stopping => return,
            Milestone::Died(code) => {
                self.own.died = Some(now);
                self.own.exit_code = Some(code);
            }
        }
        if self.write_own(events) {
            debug!("tombstone {}: {milestone:?} recorded", self.path.join(&self.name).display());
        }
    }

    /// Writes this container's tombstone as it is now; false (and logged) when it
    /// could not be written at all. A graveyard that vanished is made again first.
    fn write_own(&mut self, events: &mut Events) -> bool {
        let mut stored = self.store();
        if stored.as_ref().is_err_and(|e| e.raw_os_error() == Some(libc::ENOENT)) && self.watch.is_some() {
            // The directory opened was removed, and inotify has not said so yet.
            warn!("graveyard {} is gone: making it again", self.path.display());
            if let Some(watch) = self.watch.take() {
                let _ = self.inotify.rm_watch(watch);
            }
            if let Some(written) = self.open_again(events) {
                stored = written;
            }
        }
        stored.map_err(|e| self.cannot_write(&e)).is_ok()
    }

    /// Writes the tombstone as it is now, atomically where the disk has room, else in
    /// place.
    fn store(&self) -> std::io::Result<()> {
        // The first line is a comment, so that even a tombstone with nothing on it
        // holds a block of the disk.
        let text = format!("# the tombstone of container {}, kept by exeunt\n{}", self.name, self.own.render());
        let dir = self.dir.as_fd();
        let temporary = format!(".{}.{}.tmp", self.name, std::process::id());
        let mut written =
            create_at(dir, &temporary, text.as_bytes()).and_then(|()| rename_at(dir, &temporary, &self.name));
        if written.is_err() {
            unlink_at(dir, &temporary);
        }
        if let Err(Some(libc::ENOSPC | libc::EDQUOT)) = written.as_ref().map_err(std::io::Error::raw_os_error) {
            // The tombstone already written holds a block that this text fits in.
            written = match rewrite_in_place(dir, &self.name, text.as_bytes()) {
                // None written yet: the full disk is the error to report.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => written,
                rewritten => {
                    warn!("graveyard {}: the disk is full; rewriting the tombstone in place", self.path.display());
                    rewritten
                }
            };
        }
        written
    }
}

impl Graveyard {
    /// What a dep's tombstone says, as an event. One that another run of the pod wrote
    /// (its `Pod` is not this run's) says nothing: the dep has not started in this run
    /// yet, and will write its own.
    fn report(&self, dep: &str, tombstone: Tombstone) -> Event {
        if let (Some(theirs), Some(ours)) = (&tombstone.pod, &self.own.pod)
            && theirs != ours
        {
            let mut stale = self.stale.borrow_mut();
            if !stale.iter().any(|d| d == dep) {
                stale.push(dep.to_string());
                info!(
                    "tombstone {} is from an earlier run of the pod ({theirs}, not {ours}): not believed until {dep} writes it again",
                    self.path.join(dep).display()
                );
            }
            return Event::Tombstone { container: dep.to_string(), ready: false, died: None };
        }
        let died = tombstone.died.map(|at| Death { at, code: tombstone.exit_code });
        Event::Tombstone { container: dep.to_string(), ready: tombstone.ready.is_some(), died }
    }
}

/// Opens the graveyard directory at `path` without following a symbolic link there,
/// making it (and the directories above it) when it is missing.
fn open_dir(path: &Path) -> Result<OwnedFd, GraveyardError> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let open = || open_at(None, path, flags, 0);
    let opened = match open() {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let made = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => std::fs::create_dir_all(parent),
                _ => Ok(()),
            };
            made.and_then(|()| match std::fs::create_dir(path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            })
            .map_err(|error| GraveyardError::Create { dir: path.to_path_buf(), error })?;
            open()
        }
        opened => opened,
    };
    opened.map_err(|e| {
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        let problem = match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) if link => "is a symbolic link, which is not followed".to_string(),
            Some(libc::ENOTDIR) => "is not a directory".to_string(),
            _ => format!("cannot open it: {e}"),
        };
        GraveyardError::Open { dir: path.to_path_buf(), problem }
    })
}

/// Watches `dir`, opened at `path`, for complete writes only: a rename into place
/// (exeunt) or the close after an in-place write (kubexit); and for the directory's own
/// removal or move. The watch is made by path, without following a link there, and
/// then held against the descriptor: a directory swapped in between is refused.
fn watch(inotify: &Inotify, path: &Path, dir: &OwnedFd) -> Result<WatchDescriptor, GraveyardError> {
    let flags = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW;
    let watch =
        inotify.add_watch(path, flags).map_err(|error| GraveyardError::Watch { dir: path.to_path_buf(), error })?;
    if !same_file(dir.as_fd(), path) {
        let _ = inotify.rm_watch(watch);
        let problem = "was replaced while it was being opened".to_string();
        return Err(GraveyardError::Open { dir: path.to_path_buf(), problem });
    }
    Ok(watch)
}

/// Watches the directory above the graveyard for what comes and goes at its name.
/// None when the graveyard is `/` (nothing is above it; it cannot be replaced).
fn watch_above(inotify: &Inotify, path: &Path) -> Result<Option<WatchDescriptor>, GraveyardError> {
    let Some(above) = path.parent() else { return Ok(None) };
    let above = if above.as_os_str().is_empty() { Path::new(".") } else { above };
    let flags = AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_ONLYDIR;
    let watch = inotify.add_watch(above, flags);
    watch.map(Some).map_err(|error| GraveyardError::Watch { dir: above.to_path_buf(), error })
}

/// Whether `path` (not followed) is the file that `fd` is open on.
fn same_file(fd: BorrowedFd, path: &Path) -> bool {
    match (nix::sys::stat::fstat(fd), nix::sys::stat::lstat(path)) {
        (Ok(opened), Ok(there)) => (opened.st_dev, opened.st_ino) == (there.st_dev, there.st_ino),
        _ => false,
    }
}

/// `openat` relative to `dir` (the working directory when None), close-on-exec.
fn open_at(dir: Option<BorrowedFd>, path: &Path, flags: i32, mode: libc::mode_t) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let dir = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: a valid NUL-terminated path; openat returns a new descriptor or -1.
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC, libc::c_uint::from(mode)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_directory_at(dir: BorrowedFd, name: &str) -> bool {
    let flags = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    nix::sys::stat::fstatat(dir, name, flags).is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

fn rename_at(dir: BorrowedFd, from: &str, to: &str) -> std::io::Result<()> {
    nix::fcntl::renameat(dir, from, dir, to).map_err(std::io::Error::from)
}

fn unlink_at(dir: BorrowedFd, name: &str) {
    let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
}

/// Creates `name` in `dir` (never through a link, never over a file) with `text`.
fn create_at(dir: BorrowedFd, name: &str, text: &[u8]) -> std::io::Result<()> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let mut file = File::from(open_at(Some(dir), Path::new(name), flags, 0o644)?);
    file.write_all(text)?;
    // The mode regardless of exeunt's umask: the other containers read it.
    nix::sys::stat::fchmod(&file, nix::sys::stat::Mode::from_bits_truncate(0o644))?;
    file.sync_data()
}

/// Overwrites an existing tombstone without allocating new space: for a full disk.
fn rewrite_in_place(dir: BorrowedFd, name: &str, text: &[u8]) -> std::io::Result<()> {
    // O_NONBLOCK: opening a FIFO put in the tombstone's place must fail, not wait.
    let flags = libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let mut file = File::from(open_at(Some(dir), Path::new(name), flags, 0)?);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    file.write_all(text)?;
    file.set_len(text.len() as u64)?;
    file.sync_data()
}

impl Source for Graveyard {
    fn on_ready(&mut self, key: u32, _poller: &Poller, events: &mut Events) {
        match key {
            CHANGES => self.on_changes(events),
            _ => {
                self.timer.fired();
                if self.retry.is_some_and(|(at, _)| at <= event_loop::now())
                    && let Some(Err(e)) = self.open_again(events)
                {
                    self.cannot_write(&e);
                }
            }
        }
    }
}

/// Reads a tombstone without following a symbolic link and without reading more than
/// [`MAX_SIZE`]. Ok(None) when there is none (yet).
pub fn read_tombstone(path: &Path) -> Result<Option<Tombstone>, TombstoneError> {
    read_at(None, path)
}

/// Reads the tombstone at `path` relative to `dir` (the working directory when None).
fn read_at(dir: Option<BorrowedFd>, path: &Path) -> Result<Option<Tombstone>, TombstoneError> {
    // O_NONBLOCK: a FIFO put in a tombstone's place must not hang exeunt.
    let file = open_at(dir, path, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0);
    let file = match file {
        Ok(file) => File::from(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(TombstoneError::Symlink),
        Err(e) => return Err(TombstoneError::Open(e)),
    };
    let metadata = file.metadata().map_err(TombstoneError::Inspect)?;
    if !metadata.is_file() {
        return Err(TombstoneError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1).read_to_end(&mut bytes).map_err(TombstoneError::Read)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(TombstoneError::TooLarge);
    }
    let text = String::from_utf8(bytes).map_err(|_| TombstoneError::NotUtf8)?;
    Tombstone::parse(&text).map(Some).map_err(TombstoneError::Parse)
}
