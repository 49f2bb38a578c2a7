"""Find a dataset's files on disk, or download them into the cache.

Places are tried in this order:

1. ``data_dir`` if given, else ``$GPUPROP_DATA_DIR``; a folder holding the
   files, or holding them in a ``<name>/`` subfolder. When one of these is
   set it is the only place looked at: a folder the user named must be used.
2. The cache, ``$XDG_CACHE_HOME/gpuprop/<name>`` (default ``~/.cache``).
3. The system folders, ``/usr/share/datasets/<name>`` (Debian's dataset
   packages); ``$GPUPROP_SYSTEM_DATA_DIR`` (``os.pathsep``-separated, may be
   empty) replaces them.
4. A download from the dataset's mirrors into the cache, each file checked
   against its published SHA-256. ``$GPUPROP_<NAME>_MIRROR`` replaces the
   mirror list; the checksums still apply.

Each file may be present gzipped (``<file>.gz``) or raw (``<file>``).
"""

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

from ..errors import DataError
from .idx import atomic_writer

SYSTEM_DATA_DIRS = ["/usr/share/datasets"]
TIMEOUT = 30.0  # seconds without data before a download is given up
_CHUNK = 1 << 16


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is called, which files it has and where to get them.

    ``files`` maps each file's name as published (``...-ubyte.gz``) to its
    SHA-256. Tests build their own spec to serve generated files.
    """

    name: str  # folder name in the cache and in system folders
    title: str  # for messages
    files: dict
    mirrors: tuple
    mirror_env: str
    install_hint: str = ""  # e.g. the apt-get command that installs it
    num_classes: int = 10
    image_shape: tuple = (28, 28)
    class_names: tuple = field(default=())


def cache_root():
    """``$XDG_CACHE_HOME/gpuprop``, or ``~/.cache/gpuprop``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpuprop"


def cache_dir(spec):
    return cache_root() / spec.name


def system_dirs(spec):
    env = os.environ.get("GPUPROP_SYSTEM_DATA_DIR")
    roots = env.split(os.pathsep) if env is not None else SYSTEM_DATA_DIRS
    return [Path(r) / spec.name for r in roots if r]


def mirrors(spec):
    """The base URLs to try, the env override replacing the built-in list."""
    env = os.environ.get(spec.mirror_env, "").strip()
    return [env] if env else list(spec.mirrors)


def find_in(spec, folder):
    """Map each published file name to an existing ``.gz`` or raw file in ``folder``."""
    found = {}
    for name in spec.files:
        raw = name[:-3] if name.endswith(".gz") else name
        for candidate in (folder / name, folder / raw):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _missing(spec, found):
    return [n for n in spec.files if n not in found]


def _explicit(spec, data_dir, source):
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{source} {folder} is not a folder; point it at the folder holding "
                        f"the {spec.title} IDX files")
    found = find_in(spec, folder)
    if len(found) < len(spec.files):
        sub = find_in(spec, folder / spec.name)
        if len(sub) == len(spec.files):
            return sub
        missing = ", ".join(f"{m} (or without .gz)" for m in _missing(spec, found))
        hint = "; unset GPUPROP_DATA_DIR to use the cache or download" if source.startswith("GPUPROP") else ""
        raise DataError(f"{source} {folder} lacks {spec.title} files: {missing}; "
                        f"put the four IDX files there (or in {folder / spec.name}){hint}")
    return found


def locate(spec, data_dir=None, download=True, progress=None):
    """Return ``{published file name: path}`` for all of ``spec.files``.

    Raises ``DataError`` saying where it looked and how to fix it.
    """
    if data_dir is not None:
        return _explicit(spec, data_dir, "data_dir")
    env = os.environ.get("GPUPROP_DATA_DIR")
    if env:
        return _explicit(spec, env, "GPUPROP_DATA_DIR")
    cache = cache_dir(spec)
    places = [cache] + system_dirs(spec)
    for folder in places:
        found = find_in(spec, folder)
        if len(found) == len(spec.files):
            return found
    if not download:
        raise _not_found(spec, places, "not found and download=False")
    try:
        return fetch(spec, cache, progress=progress)
    except DataError as e:
        raise _not_found(spec, places, f"not found locally and the download failed: {e}") from None


def _not_found(spec, places, cause):
    """One line: what failed, where we looked, and each way to fix it."""
    names = ", ".join(n[:-3] + "(.gz)" if n.endswith(".gz") else n for n in spec.files)
    fixes = [f"pass --data-dir (or set GPUPROP_DATA_DIR) to a folder holding {names}"]
    if spec.install_hint:
        fixes.append(spec.install_hint)
    fixes.append(f"check the network, or set {spec.mirror_env} to a mirror's base URL")
    return DataError(f"cannot load {spec.title}: {cause}; looked in {', '.join(str(p) for p in places)}; "
                     f"to fix: {'; or '.join(fixes)}")


def fetch(spec, folder, progress=None, timeout=TIMEOUT):
    """Download the files of ``spec`` missing from ``folder``; return all paths.

    Each file goes to a temp file in ``folder``, is checked against its
    SHA-256, then renamed into place; a failed file leaves nothing behind.
    Files already verified stay, so a rerun only fetches what is missing.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder {folder} ({e.strerror or e}); "
                        "set XDG_CACHE_HOME to a writable folder") from None
    found = find_in(spec, folder)
    bases = mirrors(spec)
    for name in _missing(spec, found):
        errors = []
        for base in bases:
            url = base.rstrip("/") + "/" + name
            try:
                _download(url, folder / name, spec.files[name], progress, timeout)
            except DataError as e:
                errors.append(str(e))
                continue
            found[name] = folder / name
            break
        else:
            raise DataError("; ".join(errors))
    return found


def _download(url, dest, sha256, progress, timeout):
    report = _reporter(progress)
    request = urllib.request.Request(url, headers={"User-Agent": "gpuprop"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, atomic_writer(dest) as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            digest, done = hashlib.sha256(), 0
            report(dest.name, 0, total)
            try:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    report(dest.name, done, total)
            finally:
                report(dest.name, None, total)  # end the progress line, even on failure
            if total is not None and done != total:
                raise DataError(f"{url}: truncated download, got {done} of {total} bytes; try again")
            if digest.hexdigest() != sha256:
                raise DataError(f"{url}: SHA-256 mismatch (got {digest.hexdigest()}, expected {sha256}); "
                                "the mirror serves a different or corrupt file, try another mirror")
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"{url}: cannot connect ({e.reason})") from None
    except TimeoutError:
        raise DataError(f"{url}: no data for {timeout:g} s, timed out; check the network") from None
    except (HTTPException, OSError) as e:
        raise DataError(f"{url}: connection lost ({type(e).__name__}: {e}); try again") from None


def _reporter(progress):
    """Turn the ``progress`` argument into ``report(name, done, total)``.

    ``done=None`` marks the end of a file. ``None`` means a bar only when
    stderr is a terminal, so logs and pipes stay clean.
    """
    if callable(progress):
        return lambda name, done, total: done is not None and progress(name, done, total)
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return lambda name, done, total: None
    return _bar


def _bar(name, done, total):
    if done is None:
        sys.stderr.write("\n")
    elif total:
        filled = 30 * done // total
        sys.stderr.write(f"\rdownloading {name} [{'#' * filled}{'.' * (30 - filled)}] "
                         f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")
    else:
        sys.stderr.write(f"\rdownloading {name} {done / 1e6:.1f} MB")
    sys.stderr.flush()
