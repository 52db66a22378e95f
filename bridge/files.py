"""Files on disk, read and written safely: every rule about opening, naming and publishing a file lives here.

Writing has two meanings, kept apart by name:
- ``replace_file``: the file is replaced atomically (a run's state and settings, pictures, a result file); a
  reader sees the old file or the new one, never half of one.
- ``create_file`` / ``Folder.create_numbered``: a new file, never replacing one (models, cards, renders), even
  when another writer takes the name between our look and our write.
- ``open_append``: a file that grows across runs (a download to resume), never through a planted link.
Both write a hidden temporary that is created exclusively in the target folder (``O_EXCL``, ``O_NOFOLLOW``: a
planted file or link is never written through), flush it to disk, and only then give it its name: a rename
to replace, a hard link to create (which fails rather than replace). Work happens relative to an open folder
(``Folder``), so a folder swapped for a link after it was checked is not followed.

Errors are OSError (FileExistsError for a taken name); ``reason`` words one for a producer. Names are capped
in bytes (``NAME_BYTES``), as file systems count them, not in characters.

Reading: ``open_regular`` opens only regular files, bounded by size, without ever blocking on a FIFO or
reading a device; ``load_yaml`` reads YAML without aliases (an alias bomb expands a few hundred bytes into
gigabytes) from a file of bounded size; ``read_yaml`` words its failures.

Waiting: ``answered`` runs a look at a file (a stat, a header) on a thread of its own and waits a bounded time,
for the service's door (bridge.daemon.door), which a hung network share would otherwise hold for good; a disk
(``disk_of``: its mount) with a look still waiting is not looked at again until it answers.

Checks a producer reads (``check_input``, ``check_new``, ``create_new``, ``read_yaml``): one line naming the path,
raised as the caller's error type, so the command line and the service refuse a file in the same words.

Over 300 lines on purpose: every rule about a file on disk is here and nowhere else, so no writer or reader can
follow a rule of its own.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

import yaml

NAME_BYTES = 255  # the longest file name ext4, APFS, NTFS and most others take, in UTF-8 bytes
NUMBER_DIGITS = 3  # "kick var 001.wav"
STEM_BYTES = NAME_BYTES - 32  # sources' stems in a result's name, leaving room for " var 000001.wav" and such
MAX_NUMBER = 10**6 - 1  # numbers beyond this in a folder are someone else's names, not ours to continue
TEMPORARY_PREFIX = ".dd-bridge-"
TEMPORARY_MARK = ".partial"  # a temporary is ".dd-bridge-<random>.partial<suffix of the final name>"
# A temporary folder (tempfile's, in a run folder): named apart from the service's own hidden folders (its
# ".dd-bridge-staging", which holds the presses heard and not kept yet), so a cleanup never takes one for the other.
TEMPORARY_FOLDER_PREFIX = TEMPORARY_PREFIX + "tmp-"
YAML_BYTES = 1 << 20  # model cards, the config and run settings are a few kB
# O_BINARY (Windows only): without it the C runtime opens in text mode, turning a WAV's LF bytes into CRLF.
_BINARY = getattr(os, "O_BINARY", 0)
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | _BINARY
# os.link follows a link at its source unless told not to (where the system can be told: not Windows, whose
# hard links never follow one)
_NO_FOLLOW_LINK = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks else {}
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)  # what opening a link with O_NOFOLLOW answers
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
# Working relative to an open folder needs dir_fd (Linux, macOS, the BSDs). Without it (Windows) names are joined to
# the folder's path: the same rules, less the guard against a folder swapped for a link mid-write.
RELATIVE = {os.open, os.link, os.mkdir, os.stat, os.unlink, os.rename} <= os.supports_dir_fd \
    and os.listdir in os.supports_fd

Content = bytes | Callable[[BinaryIO], None]  # the bytes, or a function that writes them into an open file


def reason(error: OSError) -> str:
    """What went wrong, in the system's words ("No space left on device"), the name limit said where it matters."""
    if error.errno == errno.ENAMETOOLONG:
        return f"file name too long (the limit is {NAME_BYTES} bytes)"
    return error.strerror or str(error) or type(error).__name__


DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))  # no space left, or the user's quota spent


def system_error(error: BaseException) -> OSError | None:
    """The OSError behind ``error``: error itself, or one it arose from. torch.save reports a write that failed
    (a full disk) as a RuntimeError of its own ("[enforce fail at inline_container.cc] unexpected pos"), with the
    system's OSError only as its context."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or the OSError behind it, see ``system_error``) says the disk is full."""
    found = system_error(error)
    return found is not None and found.errno in DISK_FULL


def fit_name(text: str, limit: int = NAME_BYTES) -> str:
    """text cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    return text.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')  # separators, control characters (a newline would break
# "one path a line"), and what Windows and macOS Finder refuse


def safe_name(text: str, fallback: str = "clip", limit: int = NAME_BYTES) -> str:
    """One path component from any text: no separators, no leading dots, no control characters, at most
    ``limit`` bytes."""
    name = _UNSAFE.sub("_", text).strip().lstrip(".").strip()
    return fit_name(name, limit).rstrip(" .") or fallback


def source_stems(*names: str) -> list[str]:
    """The stems of source files as they appear in a result's name ("<a> var 001.wav", "<a> to <b> 001.wav"):
    made safe and cut so that, together, they leave room for the rest of the name."""
    return [safe_name(Path(name).stem, limit=STEM_BYTES // len(names)) for name in names]


def fitted_stem(compose: Callable[..., str], *stems: str, suffix: str = ".wav") -> str:
    """``compose(*stems)``: a result's stem made of source stems (source_stems, a model's name) and the labels
    ``compose`` adds around them (a region, "loop 1 bar 120 bpm", "var"), with the source stems cut, never the
    labels, so that "<stem> NNNNNN<suffix>" fits NAME_BYTES whatever the number: a long source name keeps its
    labels, and numbered_name never has to cut the stem. Labels too long on their own are left to numbered_name."""
    room = NAME_BYTES - _bytes(f" {MAX_NUMBER}{suffix}")
    stems = list(stems)
    stem = compose(*stems)
    while _bytes(stem) > room:
        share = -(-(_bytes(stem) - room) // len(stems))  # what each source gives up, rounded up
        cut = [fit_name(part, max(1, _bytes(part) - share)).rstrip() or part[:1] for part in stems]
        if cut == stems:  # nothing left to take from the sources
            break
        stems = cut
        stem = compose(*stems)
    return stem


def numbered_name(stem: str, number: int, suffix: str) -> str:
    """"<stem> 001<suffix>", the stem cut so that the whole name fits in NAME_BYTES."""
    tail = f" {number:0{NUMBER_DIGITS}d}{suffix}"
    return _written_stem(stem, tail) + tail


def _written_stem(stem: str, tail: str) -> str:
    """stem as numbered_name writes it before ``tail``: cut to fit."""
    return fit_name(stem, NAME_BYTES - _bytes(tail)).rstrip()


def _bytes(text: str) -> int:
    """text's length in a file name, in bytes (surrogateescape: the undecodable bytes of a name stay one byte)."""
    return len(text.encode("utf-8", "surrogateescape"))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: str | os.PathLike) -> str:
    """A path (or any text) as a message shows it: each control character written as its escape (a newline as
    "\\n"), so that a message naming a file called "bad<newline>name.wav" is still one line. Every message that
    names a file (check_input, read_audio, ...) shows it through this; the CLI prints its errors through it too."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


class Folder:
    """An open folder: names are created and linked relative to it, so it cannot be swapped for a link
    between a check and a write. Use as a context manager (or ``close()``)."""

    def __init__(self, path: str | os.PathLike, *, _fd: int | None = None):
        self.path = Path(path)
        if _fd is None and RELATIVE:
            _fd = os.open(self.path, _DIRECTORY)
        elif _fd is None and not self.path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "no such folder", str(self.path))
        self.fd = _fd  # None where the system has no dir_fd: names are then joined to the path

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _at(self, name: str | os.PathLike) -> str:
        """name as the system calls take it along with dir_fd=self.fd."""
        return os.fspath(name) if self.fd is not None else os.path.join(self.path, name)

    def subfolder(self, name: str, *, create: bool = True) -> "Folder":
        """The folder ``name`` inside this one, made if missing (``create``); a link there is refused (ELOOP), not
        followed; a file there is NotADirectoryError."""
        if create:
            try:
                os.mkdir(self._at(name), 0o777, dir_fd=self.fd)
            except FileExistsError:
                pass
        if self.fd is None:
            if self.is_link(name):
                raise OSError(errno.ELOOP, "a link", str(self.path / name))
            return Folder(self.path / name)
        try:
            fd = os.open(name, _DIRECTORY | getattr(os, "O_NOFOLLOW", 0), dir_fd=self.fd)
        except OSError as error:  # Linux answers ENOTDIR for a link as for a file, FreeBSD EMLINK: say which
            if error.errno in _NOT_FOLLOWED and self.is_link(name):
                raise OSError(errno.ELOOP, "a link", str(self.path / name)) from None
            raise
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self.path / name))
        return Folder(self.path / name, _fd=fd)

    def is_link(self, name: str) -> bool:
        try:
            return stat.S_ISLNK(self.stat(name).st_mode)
        except FileNotFoundError:
            return False

    def stat(self, name: str) -> os.stat_result:
        """The entry ``name`` itself (a link's own, not what it leads to)."""
        return os.stat(self._at(name), dir_fd=self.fd, follow_symlinks=False)

    def names(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.path)

    def exists(self, name: str) -> bool:
        try:
            self.stat(name)
            return True
        except FileNotFoundError:
            return False

    # -- writing -----------------------------------------------------------------------------------------------
    def write_temporary(self, content: Content, suffix: str = "", *, sync: bool = True) -> str:
        """A hidden new file holding content, flushed to disk (``sync``: for files that must survive a power cut,
        not for a progress note rewritten many times a second); its name (relative to this folder)."""
        for _ in range(100):
            name = f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}{TEMPORARY_MARK}{suffix}"
            try:
                fd = os.open(self._at(name), _CREATE, 0o666, dir_fd=self.fd)  # the umask decides, as for any file
            except FileExistsError:
                continue
            try:
                with os.fdopen(fd, "wb") as file:
                    if isinstance(content, (bytes, bytearray, memoryview)):
                        file.write(content)
                    else:
                        content(file)
                    file.flush()
                    if sync:
                        os.fsync(file.fileno())
            except BaseException:
                self.remove(name)
                raise
            return name
        raise FileExistsError(errno.EEXIST, "cannot create a temporary file", str(self.path))

    def create(self, name: str, content: Content) -> Path:
        """A new file ``name``; FileExistsError, leaving everything as it was, when the name is taken."""
        temporary = self.write_temporary(content, _suffix(name))
        try:
            self.link(temporary, name)
        finally:
            self.remove(temporary)
        return self.path / name

    def create_numbered(self, stem: str, suffix: str, content: Content) -> Path:
        """A new file under the next free "<stem> NNN<suffix>"; safe against other writers taking numbers too."""
        temporary = self.write_temporary(content, suffix)
        try:
            return self.link_numbered(temporary, stem, suffix)
        finally:
            self.remove(temporary)

    def link_numbered(self, source: str | os.PathLike, stem: str, suffix: str,
                      source_folder: "Folder | None" = None) -> Path:
        """Give the finished file ``source`` (in source_folder, default this one) the next free numbered name
        here; the source keeps its own name too."""
        for _ in range(1000):
            name = self.next_free_name(stem, suffix)
            try:
                self.link(source, name, source_folder)
                return self.path / name
            except FileExistsError:
                continue  # another writer took this number between our look and our link
        raise FileExistsError(errno.EEXIST, f"no free name for {stem!r}", str(self.path))

    def next_free_name(self, stem: str, suffix: str) -> str:
        """"<stem> 001<suffix>", or one above the highest number already here, so new files sort after old ones.
        Numbers past MAX_NUMBER are ignored: a planted "kick var 999...9.wav" must not push ours past the longest
        name there is."""
        taken = [number for name in self.names() if (number := _number_of(name, stem, suffix)) is not None]
        number = max((n for n in taken if n <= MAX_NUMBER), default=0) + 1
        while self.exists(name := numbered_name(stem, number, suffix)):
            number += 1
        return name

    def link(self, source: str | os.PathLike, name: str, source_folder: "Folder | None" = None) -> None:
        """Name the file ``source`` also ``name``; FileExistsError if the name is taken, whoever took it and when.
        ``source`` must be a regular file itself: a link planted under its name is refused, never followed (what
        it leads to, any file of the user's, would get the new name)."""
        source_folder = source_folder or self
        source, source_fd, target = source_folder._at(source), source_folder.fd, self._at(name)
        if not stat.S_ISREG(os.stat(source, dir_fd=source_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(source))
        try:
            os.link(source, target, src_dir_fd=source_fd, dst_dir_fd=self.fd, **_NO_FOLLOW_LINK)
        except FileExistsError:
            raise
        except OSError as error:
            if error.errno == errno.EXDEV:  # another file system: the caller decides (it may copy instead)
                raise
            # No hard links here (FAT, some network shares): reserve the name exclusively, then move the file onto
            # it. The source loses its name: callers remove it afterwards anyway.
            os.close(os.open(target, _CREATE, 0o644, dir_fd=self.fd))
            try:
                os.replace(source, target, src_dir_fd=source_fd, dst_dir_fd=self.fd)
            except BaseException:
                self.remove(name)
                raise

    def replace(self, name: str, content: Content, *, sync: bool = True) -> Path:
        """Write ``name`` atomically, replacing the file there (a link there is replaced, not followed)."""
        temporary = self.write_temporary(content, _suffix(name), sync=sync)
        try:
            os.replace(self._at(temporary), self._at(name), src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.remove(temporary)
            raise
        return self.path / name

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._at(name), dir_fd=self.fd)

    def remove_folder(self, name: str) -> None:
        """The empty folder ``name`` removed; OSError if it is not empty."""
        os.rmdir(self._at(name), dir_fd=self.fd)


_NUMBERED = re.compile(r"(.*) ([0-9]+)", re.DOTALL)


def _number_of(name: str, stem: str, suffix: str) -> int | None:
    """N when ``name`` is "<stem> N<suffix>" as numbered_name writes it (the stem cut to fit beside that N), compared
    as case-blind file systems do; else None."""
    if not name.lower().endswith(suffix.lower()):
        return None
    found = _NUMBERED.fullmatch(name[: len(name) - len(suffix)])
    if found is None:
        return None
    written = _written_stem(stem, f" {found.group(2)}{suffix}")
    return int(found.group(2)) if found.group(1).lower() == written.lower() else None


def _suffix(name: str) -> str:
    return Path(name).suffix


def open_below(root: str | os.PathLike, path: str | os.PathLike) -> Folder:
    """The folder at ``path``, which lies at or below the folder ``root``, open (close it, or use it in a with); made
    where missing. Below root it is opened one component at a time, each relative to the last one opened and never
    through a link: a link anywhere below root, there from the start or swapped in after a check of the path, is
    refused (OSError ELOOP) and nothing is made through it. Root itself is opened as named (the caller's own,
    trusted setting), but it may not be a link either. Where the system has no dir_fd (Windows) each component is
    looked at by path instead: the same rule, less the guard against a swap between the look and the write."""
    root, path = Path(root), Path(path)
    parts = path.relative_to(root).parts  # ValueError: path is not below root (a caller's mistake)
    root.mkdir(parents=True, exist_ok=True)
    if RELATIVE:
        try:
            fd = os.open(root, _DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as error:
            if error.errno in _NOT_FOLLOWED and root.is_symlink():
                raise OSError(errno.ELOOP, "a link", str(root)) from None
            raise
        folder = Folder(root, _fd=fd)
    else:
        if root.is_symlink():
            raise OSError(errno.ELOOP, "a link", str(root))
        folder = Folder(root)
    for part in parts:
        try:
            inner = folder.subfolder(part)
        finally:
            folder.close()
        folder = inner
    return folder


def create_file(path: str | os.PathLike, content: Content) -> Path:
    """A new file at path, complete or not at all; FileExistsError if path exists (nothing is replaced)."""
    path = Path(path)
    with Folder(path.parent) as folder:
        return folder.create(path.name, content)


def replace_file(path: str | os.PathLike, content: Content, *, sync: bool = True) -> Path:
    """The file at path replaced atomically by content."""
    path = Path(path)
    with Folder(path.parent) as folder:
        return folder.replace(path.name, content, sync=sync)


def remove_leftovers(where: str | os.PathLike | Folder) -> list[tuple[str, int]]:
    """What writers killed mid-write left in the folder ``where`` (a path, or a Folder open already, left open)
    itself, removed: the hidden temporaries of ``write_temporary`` (``.dd-bridge-<random>.partial...``, regular files
    only) and hidden temporary folders named with TEMPORARY_FOLDER_PREFIX (tempfile.TemporaryDirectory's, emptied of
    their files first; one holding a folder is left; the service's staging folder is never one). Nothing below is
    searched and no link is followed: a link under such a name is left alone. Only for a folder that one writer uses
    at a time (a training run's, a pack's under its lock), so everything of ours there is a leftover.
    [(name, bytes)] of what was removed."""
    removed = []
    with contextlib.nullcontext(where) if isinstance(where, Folder) else Folder(where) as folder:
        for name in folder.names():
            if not name.startswith(TEMPORARY_PREFIX):
                continue
            try:
                entry = folder.stat(name)
                if stat.S_ISREG(entry.st_mode) and TEMPORARY_MARK in name:
                    folder.remove(name)
                    removed.append((name, entry.st_size))
                elif stat.S_ISDIR(entry.st_mode) and name.startswith(TEMPORARY_FOLDER_PREFIX):
                    size = 0
                    with folder.subfolder(name, create=False) as inner:
                        for inside in inner.names():
                            found = inner.stat(inside)
                            if stat.S_ISREG(found.st_mode) or stat.S_ISLNK(found.st_mode):
                                inner.remove(inside)  # a link itself, never what it leads to
                                size += found.st_size if stat.S_ISREG(found.st_mode) else 0
                    folder.remove_folder(name)
                    removed.append((name + os.sep, size))
            except OSError:  # gone meanwhile, not ours to empty (a folder inside), unreadable: left as it is
                continue
    return removed


def open_append(path: str | os.PathLike) -> BinaryIO:
    """A file to add to (a download to resume), created if missing; a link planted at its name is refused
    (ELOOP), never followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    return os.fdopen(os.open(path, flags, 0o666), "ab")


def check_writable(folder: str | os.PathLike) -> None:
    """OSError unless a file can be created in folder: asked before hours of work, not after."""
    with Folder(folder) as opened:
        opened.remove(opened.write_temporary(b""))


# -- checks a producer reads: one line naming the path, in the caller's error type ------------------------------

Refusal = Callable[[str], Exception]  # the caller's one-line error (AudioError, CheckpointError, ...)


def check_new(path: str | os.PathLike, refuse: Refusal) -> Path:
    """A path a new file may take: free (not even a link there), in an existing folder. Asked before the work that
    makes the file; taking the name checks again, atomically (create_new)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise refuse(_taken(path))
    if not path.parent.is_dir():
        raise refuse(_no_folder(path.parent))
    return path


def open_folder(path: str | os.PathLike, refuse: Refusal) -> Folder:
    """The folder at path, open to write into (close it, or use it in a with), refused like check_new."""
    try:
        return Folder(path)
    except (FileNotFoundError, NotADirectoryError):
        raise refuse(_no_folder(path)) from None
    except OSError as error:
        raise refuse(f"{printable(path)}: cannot write here ({reason(error)})") from None


def create_new(path: str | os.PathLike, content: Content, refuse: Refusal) -> Path:
    """A new file at path, complete or not at all (create_file), refused like check_new, also when another writer
    takes the name meanwhile. Other OSErrors (a full disk) reach the caller as they are: it knows what to advise."""
    path = check_new(path, refuse)
    try:
        return create_file(path, content)
    except FileExistsError:
        raise refuse(_taken(path)) from None


def _taken(path: Path) -> str:
    return f"{printable(path)}: already exists; not overwriting it"


def _no_folder(path: str | os.PathLike) -> str:
    return f"{printable(path)}: no such folder"


def check_input(path: str | os.PathLike, refuse: Refusal, what: str = "an audio file") -> os.stat_result:
    """The checks a file to read gets before it is opened, the same for the command line and the service: it is
    there, not a folder, not empty, readable by us."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, ValueError):  # ValueError: a NUL in the name, which no file has
        raise refuse(f"{printable(path)}: no such file") from None
    except OSError as error:
        raise refuse(f"{printable(path)}: cannot read ({reason(error)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise refuse(f"{printable(path)}: is a folder, not {what}")
    if info.st_size == 0:
        raise refuse(f"{printable(path)}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise refuse(f"{printable(path)}: permission denied")
    return info


# -- waiting on a disk -----------------------------------------------------------------------------------------

# A local disk answers a stat or a header read in milliseconds; a network share that has not answered in this long
# is hung (an NFS hard mount retries for minutes, SMB for a minute). Under the DAWs' own patience with a request
# (REAPER's quick requests give up after 5 s, and its Follow selection then takes the service for gone), so the
# answer reaches them. An external disk waking from sleep (2-8 s) fails its first look this way; "try again" works.
DISK_ANSWER_SECONDS = 3.0
# Looks left waiting on hung disks at once: each holds a thread blocked in the kernel until its share answers, which
# no one can interrupt; past this many, a look is refused at once instead of starting one more such thread.
MAX_UNANSWERED = 16
_hung_lock = threading.Lock()
_hung: dict[str, int] = {}  # the disk (disk_of) of each look given up on and still waiting -> how many wait there
T = TypeVar("T")
# Where network shares and removable disks are mounted when the mount table cannot be read (macOS, the BSDs): the
# folder right under one of these is a disk of its own.
MOUNT_ROOTS = ("/Volumes", "/net", "/Network/Servers", "/mnt", "/media", "/run/media")
MOUNT_TABLE = "/proc/self/mountinfo"  # Linux: this process's mounts, read without touching any of them


def disk_of(path: str | os.PathLike) -> str:
    """The disk (mount) that ``path`` lies on, found without looking at it (a look may hang: that is the point):
    on Windows its drive or ``\\\\server\\share``; on Linux the longest mount point of the mount table above it;
    elsewhere the folder under a MOUNT_ROOTS folder (/Volumes/NAS), else the file system's root. A hung share is
    one disk: every folder on it waits on the same server, and no other disk does."""
    full = os.path.abspath(os.path.expanduser(os.fspath(path)))  # no disk access
    drive = os.path.splitdrive(full)[0]
    if drive:
        return drive.upper()
    mounts = _mount_points()
    if mounts:
        return max((m for m in mounts if full == m or full.startswith(m.rstrip("/") + "/")), key=len, default="/")
    for root in MOUNT_ROOTS:
        if full.startswith(root + "/"):
            return root + "/" + full[len(root) + 1:].split("/", 1)[0]
    return os.sep


def _mount_points() -> list[str]:
    """The mount points of Linux's mount table (octal escapes decoded: \\040 is a space), or [] where there is none."""
    try:
        with open(MOUNT_TABLE, "rb") as table:
            lines = table.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def answered(look: Callable[[], T], what: str | os.PathLike, refuse: Refusal, seconds: float | None = None) -> T:
    """``look()`` (a stat, a header read; a write only where its finishing late is harmless: a recipe saved, which a
    second try then finds there) at the file or folder ``what``, run on a daemon thread of its own and waited for at
    most ``seconds``; its result, or the error it raised. A look whose
    disk does not answer in time is left to finish on its own (its result dropped) and ``refuse`` says so naming
    ``what``: a file on a hung network share costs the caller one bounded wait instead of its thread. Until that
    look returns, another look at the same disk (disk_of: the share) is refused at once (it is known not to answer;
    each would leave one more thread waiting), while looks at other disks (local files) go on as usual. The service
    looks at every file and folder a request names through this."""
    seconds = DISK_ANSWER_SECONDS if seconds is None else seconds
    place = disk_of(what)
    with _hung_lock:
        same_disk, too_many = place in _hung, sum(_hung.values()) >= MAX_UNANSWERED
    if same_disk or too_many:
        earlier = f"an earlier look at {place} is" if same_disk else f"{MAX_UNANSWERED} earlier looks are"
        raise refuse(f"{printable(what)}: not looked at: {earlier} still waiting for an answer (a network share not "
                     "responding?); try again once it is back")
    outcome: list = []
    done = threading.Event()
    given_up = [False]  # set under _hung_lock: the look then unmarks its disk when it returns

    def run() -> None:
        try:
            outcome.append((True, look()))
        except BaseException as error:  # handed to the caller as raised
            outcome.append((False, error))
        finally:
            with _hung_lock:
                done.set()
                if given_up[0]:
                    _hung[place] -= 1
                    if not _hung[place]:
                        del _hung[place]

    # A daemon thread, not an executor's: an executor's threads are joined at exit, and a hung one would hang the exit.
    threading.Thread(target=run, name="disk-look", daemon=True).start()
    if not done.wait(seconds):
        with _hung_lock:
            if not done.is_set():  # it may have answered meanwhile: then it is no hung look
                given_up[0] = True
                _hung[place] = _hung.get(place, 0) + 1
        if given_up[0]:
            raise refuse(f"{printable(what)}: its disk has not answered in {seconds:g} s (a network share not "
                         "responding, or a disk asleep?); try again once it is back")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


# -- reading ---------------------------------------------------------------------------------------------------

class TooLarge(OSError):
    """A file larger than the limit set for its kind."""


def open_regular(path: str | os.PathLike, limit: int) -> BinaryIO:
    """The regular file at path, opened for reading (close it, or use it in a with); OSError for anything else
    (a FIFO, a device such as /dev/zero, a folder) or a file over ``limit`` bytes. A FIFO is opened without
    blocking, then refused."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | _BINARY)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file but a device, pipe or socket", str(path))
        if info.st_size > limit:
            raise TooLarge(errno.EFBIG, f"{_size(info.st_size)}, over the limit of {_size(limit)} for this kind "
                                        "of file", str(path))
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)  # reads of the regular file it turned out to be may wait as usual
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def name_of(file: BinaryIO, path: str | os.PathLike) -> str:
    """A name that opens exactly this open file, for libraries that take only names (torch's mmap, safetensors):
    /proc/self/fd/N where there is one, so the path cannot be swapped for a FIFO or a device meanwhile."""
    own = f"/proc/self/fd/{file.fileno()}"
    return own if os.path.exists(own) else os.fspath(path)


def sha256_of(file: BinaryIO) -> str:
    """The hex sha256 of what is left to read in an open binary file, read a block at a time (files of any size;
    hashlib.file_digest needs Python 3.11)."""
    digest = hashlib.sha256()
    for block in iter(lambda: file.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes (see open_regular)."""
    with open_regular(path, limit) as file:
        return file.read(limit + 1)[:limit]


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("kB", 1000)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


class AliasError(yaml.YAMLError):
    """An alias (``*name``) in a file whose YAML may not have them."""

    def __init__(self, mark):
        super().__init__("aliases (*name) are not accepted")
        self.problem_mark = mark


class _NoAliasLoader(yaml.SafeLoader):
    """yaml.SafeLoader without aliases: nothing can expand beyond the size of the text."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise AliasError(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def load_yaml(path: str | os.PathLike, limit: int = YAML_BYTES) -> object:
    """The YAML in a regular file of at most ``limit`` bytes, read without aliases (safe types only).
    OSError when it cannot be read, UnicodeDecodeError, or yaml.YAMLError (AliasError for an alias)."""
    return yaml.load(read_regular(path, limit).decode("utf-8"), Loader=_NoAliasLoader)


def read_yaml(path: str | os.PathLike, refuse: Refusal, limit: int = YAML_BYTES) -> object:
    """load_yaml, every way it fails one refusal naming the path: no such file, cannot read (why), not UTF-8 text,
    not valid YAML at line N (an alias said as such)."""
    try:
        return load_yaml(path, limit)
    except FileNotFoundError:
        raise refuse(f"{printable(path)}: no such file") from None
    except OSError as error:
        raise refuse(f"{printable(path)}: cannot read ({reason(error)})") from None
    except UnicodeDecodeError:
        raise refuse(f"{printable(path)}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        what = f": {error.args[0]}" if isinstance(error, AliasError) else ""
        raise refuse(f"{printable(path)}: not valid YAML{at}{what}") from None


def shown(value: object, limit: int = 60) -> str:
    """repr(value) for a message, cut to ``limit`` characters: a message never repeats an unbounded value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
