"""Measuring and deleting a directory tree a candidate wrote (the fallback's private directory on the host disk).

Both walks are iterative (no recursion: a 3000-deep chain crashed ``shutil.rmtree`` with RecursionError) and
fd-relative (``openat``/``fstatat``/``unlinkat`` on names, never full paths: a tree deeper than PATH_MAX stays
visible and deletable). Only one directory descriptor is open at a time: going up re-opens ``..`` and checks that
it is the directory it came from (device and inode), so a renamed directory can never lead the walk outside the
tree. Symlinks are never followed.
"""

from __future__ import annotations

import contextlib
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _scan(fd: int, totals: list[int], max_entries: int) -> list[str]:
    """Add the entries of the directory ``fd`` to ``totals`` ([bytes, entries]); its sub-directory names."""
    subdirs = []
    with os.scandir(fd) as it:
        for entry in it:
            totals[1] += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            totals[0] += max(st.st_blocks * 512, 4096)
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(entry.name)
            if totals[1] >= max_entries:
                break
    return subdirs


def usage(root: str, *, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) under ``root``; stops counting at ``max_entries`` entries."""
    totals = [0, 0]
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return 0, 0
    try:
        stack = [(_scan(fd, totals, max_entries), _identity(fd))]
        while stack and totals[1] < max_entries:
            names, _ = stack[-1]
            if not names:
                stack.pop()
                if not stack:
                    break
                fd = _up(fd, stack[-1][1])
                if fd < 0:
                    break
                continue
            try:
                child = os.open(names.pop(), _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            os.close(fd)
            fd = child
            try:
                stack.append((_scan(fd, totals, max_entries), _identity(fd)))
            except OSError:
                stack.append(([], _identity(fd)))
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, TypeError):
            os.close(fd)
    return totals[0], totals[1]


def _up(fd: int, expected: tuple[int, int]) -> int:
    """The parent of ``fd`` (``fd`` is closed), or -1 when it is not the directory the walk came from."""
    try:
        parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
    if _identity(parent) != expected:
        os.close(parent)
        return -1
    return parent


def _clear(fd: int, owner_fixes: bool) -> list[str]:
    """Unlink every non-directory entry of ``fd``; return the sub-directory names (made searchable when needed)."""
    subdirs = []
    with os.scandir(fd) as it:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    for name, is_dir in names:
        if is_dir:
            if owner_fixes:
                with contextlib.suppress(OSError):
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):  # never chmod through a symlink
                        os.chmod(name, 0o700, dir_fd=fd)
            subdirs.append(name)
        else:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
    return subdirs


def _clear_or_nothing(fd: int, owner_fixes: bool) -> list[str]:
    try:
        return _clear(fd, owner_fixes)
    except OSError:
        return []


def remove_tree(root: str) -> bool:
    """Delete ``root`` and everything under it; True when it is gone. Runs after the candidate's processes are
    dead. ``owner_fixes`` (non-root workers) makes directories the candidate chmodded 000 searchable first."""
    owner_fixes = os.geteuid() != 0
    if owner_fixes:
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(root).st_mode):
                os.chmod(root, 0o700)
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError:
        return not os.path.lexists(root)
    try:
        stack = [(_clear_or_nothing(fd, owner_fixes), _identity(fd), None)]
        while stack:
            names, _, name_here = stack[-1]
            if names:
                name = names.pop()
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                os.close(fd)
                fd = child
                stack.append((_clear_or_nothing(fd, owner_fixes), _identity(fd), name))
                continue
            stack.pop()
            if not stack:
                break
            fd = _up(fd, stack[-1][1])
            if fd < 0:
                return False
            with contextlib.suppress(OSError):
                os.rmdir(name_here, dir_fd=fd)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, TypeError):
            os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(root)
    return not os.path.lexists(root)
