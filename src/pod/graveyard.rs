//! Where pods are coordinated through a shared volume: this container's tombstone is
//! written there, and the tombstones of the containers it depends on are watched and
//! reported as they read ("the tombstone of db says ready"). What they mean for this
//! container is decided by the supervisor.
//!
//! The directory is watched with inotify *before* it is scanned, so a tombstone written
//! between the two is seen either way; a death that happened before exeunt started is
//! found by the scan (kubexit saw only events, and missed it).
//!
//! Faults are met where they happen: a graveyard exeunt cannot write in is an error
//! at start, before anything runs; a graveyard that vanishes is made again, watched
//! again and scanned again; on a full disk the tombstone is rewritten in place, in
//! the space it already has.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use log::{debug, error, warn};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::tombstone::{self, MAX_SIZE, Tombstone};
use crate::event_loop::{Events, Poller, Source};
use crate::events::{Death, Event, Milestone};
use crate::plan::Pod;

/// Why the graveyard cannot be used; each shown as one line naming the path.
#[derive(Debug)]
pub enum GraveyardError {
    Create {
        dir: PathBuf,
        error: std::io::Error,
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
    dir: PathBuf,
    name: String,
    /// The containers this one depends on, for birth or for death.
    deps: BTreeSet<String>,
    inotify: Inotify,
    watch: WatchDescriptor,
    own: Tombstone,
}

impl Graveyard {
    /// Opens the graveyard, creating the directory when it is missing, and makes sure
    /// that this container's tombstone can be written there: a pod whose containers
    /// cannot learn of each other's deaths would never end.
    pub fn open(pod: &Pod) -> Result<Graveyard, GraveyardError> {
        let dir = &pod.graveyard;
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|error| GraveyardError::Watch { dir: dir.clone(), error })?;
        let watch = watch(&inotify, dir)?;
        // A symbolic link in the tombstone's place is replaced, never followed; a
        // directory there would make every write fail.
        let own = dir.join(&pod.name);
        if std::fs::symlink_metadata(&own).is_ok_and(|m| m.is_dir()) {
            return Err(GraveyardError::OwnIsDirectory { path: own });
        }
        let graveyard = Graveyard {
            dir: dir.clone(),
            name: pod.name.clone(),
            deps: pod.death_deps.iter().chain(&pod.birth_deps).cloned().collect(),
            inotify,
            watch,
            own: Tombstone::default(),
        };
        // Written now, with nothing on it yet: this proves the graveyard writable, and
        // gives the tombstone the space it is rewritten in should the disk fill up
        // before this container has anything to record (a job that fills the volume
        // as soon as it starts).
        graveyard.store().map_err(|error| GraveyardError::NotWritable { dir: dir.clone(), error })?;
        Ok(graveyard)
    }

    /// Reads every dep's tombstone as it is now. Call once, after `open`.
    pub fn scan(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.look_at_every_dep(&mut events);
        events
    }

    /// The graveyard changed: re-reads the tombstones that were written.
    pub fn on_readable(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let changes = match self.inotify.read_events() {
            Ok(changes) => changes,
            Err(nix::errno::Errno::EAGAIN) => return events,
            Err(e) => {
                warn!("graveyard {}: reading its changes failed: {e}", self.dir.display());
                return events;
            }
        };
        for change in changes {
            if change.wd != self.watch {
                // The last events of a directory that was replaced.
                continue;
            }
            if change.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
                self.make_again(change.mask.contains(AddWatchFlags::IN_MOVE_SELF), &mut events);
                continue;
            }
            if let Some(name) = change.name.as_deref().and_then(OsStr::to_str)
                && self.deps.contains(name)
            {
                self.look_at(name, &mut events);
            }
        }
        events
    }

    /// The graveyard was removed or moved away: it is made again at its path and
    /// watched there, this container's tombstone is written again, and the deps'
    /// tombstones are read (another container may have made it again first).
    fn make_again(&mut self, moved: bool, events: &mut Vec<Event>) {
        warn!("graveyard {} was {}: making it again", self.dir.display(), if moved { "moved" } else { "removed" });
        if moved {
            // A removed directory's watch is gone already; a moved one's still follows it.
            let _ = self.inotify.rm_watch(self.watch);
        }
        match watch(&self.inotify, &self.dir) {
            Ok(watch) => self.watch = watch,
            Err(e) => {
                error!("{e}: deps can no longer be followed");
                return;
            }
        }
        self.write_own();
        self.look_at_every_dep(events);
    }

    fn look_at_every_dep(&self, events: &mut Vec<Event>) {
        for dep in &self.deps {
            self.look_at(dep, events);
        }
    }

    /// Reads one dep's tombstone and reports what it says.
    fn look_at(&self, dep: &str, events: &mut Vec<Event>) {
        let path = self.dir.join(dep);
        match read_tombstone(&path) {
            Ok(Some(tombstone)) => {
                debug!("tombstone {}: {tombstone:?}", path.display());
                events.push(report(dep, tombstone));
            }
            Ok(None) => {}
            Err(e) => error!("tombstone {}: {e}; it is read again when it changes", path.display()),
        }
    }

    /// Writes this container's milestone into its tombstone, atomically: the new text
    /// goes to a temporary file in the graveyard, which is then renamed into place.
    pub fn record(&mut self, milestone: Milestone) {
        let now = tombstone::now();
        match milestone {
            Milestone::Born => self.own.born = Some(now),
            Milestone::Ready => self.own.ready = Some(now),
            Milestone::Died(code) => {
                self.own.died = Some(now);
                self.own.exit_code = Some(code);
            }
        }
        if self.write_own() {
            debug!("tombstone {}: {milestone:?} recorded", self.dir.join(&self.name).display());
        }
    }

    /// Writes this container's tombstone as it is now; false (and logged) when it
    /// could not be written at all.
    fn write_own(&mut self) -> bool {
        match self.store() {
            Ok(()) => true,
            Err(e) => {
                error!("tombstone {}: cannot write it: {e}", self.dir.join(&self.name).display());
                false
            }
        }
    }

    /// Writes the tombstone as it is now, atomically where the disk has room, else in
    /// place; a graveyard that vanished is made again first.
    fn store(&self) -> std::io::Result<()> {
        let path = self.dir.join(&self.name);
        // The first line is a comment, so that even a tombstone with nothing on it
        // holds a block of the disk.
        let text = format!("# the tombstone of container {}, kept by exeunt\n{}", self.name, self.own.render());
        let temporary = self.dir.join(format!(".{}.{}.tmp", self.name, std::process::id()));
        let mut written = write_file(&temporary, text.as_bytes()).and_then(|()| std::fs::rename(&temporary, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        match written.as_ref().map_err(std::io::Error::raw_os_error) {
            Err(Some(libc::ENOENT)) => {
                // The graveyard vanished: it is made again (and watched again once
                // inotify reports the removal).
                warn!("graveyard {} is gone: making it again", self.dir.display());
                written = std::fs::create_dir_all(&self.dir)
                    .and_then(|()| write_file(&temporary, text.as_bytes()))
                    .and_then(|()| std::fs::rename(&temporary, &path));
            }
            Err(Some(libc::ENOSPC | libc::EDQUOT)) => {
                // The tombstone already written holds a block that this text fits in.
                warn!("graveyard {}: the disk is full; rewriting the tombstone in place", self.dir.display());
                written = rewrite_in_place(&path, text.as_bytes());
            }
            _ => {}
        }
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }
}

/// What a dep's tombstone says, as an event.
fn report(dep: &str, tombstone: Tombstone) -> Event {
    let died = tombstone.died.map(|at| Death { at, code: tombstone.exit_code });
    Event::Tombstone { container: dep.to_string(), ready: tombstone.ready.is_some(), died }
}

/// Watches `dir` for complete writes only: a rename into place (exeunt) or the close
/// after an in-place write (kubexit); and for the directory's own removal. Creates the
/// directory when it is missing.
fn watch(inotify: &Inotify, dir: &Path) -> Result<WatchDescriptor, GraveyardError> {
    std::fs::create_dir_all(dir).map_err(|error| GraveyardError::Create { dir: dir.to_path_buf(), error })?;
    let flags = AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR;
    inotify.add_watch(dir, flags).map_err(|error| GraveyardError::Watch { dir: dir.to_path_buf(), error })
}

/// Overwrites an existing tombstone without allocating new space: for a full disk.
fn rewrite_in_place(path: &Path, text: &[u8]) -> std::io::Result<()> {
    // O_NONBLOCK: opening a FIFO put in the tombstone's place must fail, not wait.
    let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    let mut file = std::fs::OpenOptions::new().write(true).custom_flags(flags).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    file.write_all(text)?;
    file.set_len(text.len() as u64)?;
    file.sync_data()
}

impl AsFd for Graveyard {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}

impl Source for Graveyard {
    fn on_ready(&mut self, _key: u32, _poller: &Poller, events: &mut Events) {
        events.extend(self.on_readable());
    }
}

fn write_file(path: &Path, text: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o644)
        .open(path)?;
    file.write_all(text)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.sync_data()
}

/// Reads a tombstone without following a symbolic link and without reading more than
/// [`MAX_SIZE`]. Ok(None) when there is none (yet).
pub fn read_tombstone(path: &Path) -> Result<Option<Tombstone>, TombstoneError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO put in a tombstone's place must not hang exeunt.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
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
