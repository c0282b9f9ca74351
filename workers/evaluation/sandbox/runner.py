"""The program that runs INSIDE the sandbox. Standard library only; never imported by the trusted process.

It is started as ``python -I -S -B -u -c <this source> <config json>`` (one interpreter per candidate) and:

1. reads the candidate source from an inherited file descriptor, imports qiskit (trusted code, before anything of
   the candidate runs), sets the resource limits;
2. when started as root: drops to the per-slot unprivileged uid (all capabilities go with it);
3. sets no_new_privs, installs the seccomp program(s) it was given (the fallback filter and the exec ban) and a
   Landlock ruleset (read-only interpreter and libraries, a private writable work directory, no TCP, no signals or
   abstract sockets outside the sandbox) where the kernel has Landlock;
4. imports the candidate as a module from ``<workdir>/candidate.py``, calls ``create_ansatz(n)`` for each size and
   writes each circuit as QPY to the result descriptor.

Result frames: ``struct.pack(">cII", tag, n, len(payload)) + payload``; tags: ``S`` started (JSON), ``C`` circuit
for n (QPY), ``F`` failure at an extra size n (JSON), ``E`` fatal failure (JSON: kind ``error``/``resource``),
``D`` done. Everything in them is candidate-controlled from step 4 on; the trusted side parses them as hostile.
Exit code 70 means the sandbox itself could not be set up (not the candidate's fault).
"""

import json
import os
import struct
import sys

SETUP_FAILED = 70
_OWN_PID = os.getpid()
_write, _exit, _getpid = os.write, os._exit, os.getpid


def _send(fd, tag, n=0, payload=b""):
    data = memoryview(struct.pack(">cII", tag, n, len(payload)) + payload)
    while data:
        data = data[_write(fd, data):]


def _setup_failed(message):
    try:
        _write(2, ("qmind sandbox setup failed: " + message + "\n").encode("utf-8", "replace"))
    finally:
        _exit(SETUP_FAILED)


def _others_can_reach(path):
    """True when a uid without any ownership could list/traverse every component of ``path``."""
    import stat
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    for i in range(1, len(parts) + 1):
        st = os.stat(os.sep.join(parts[:i]) or os.sep)
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def _libc():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return ctypes, libc


def _prctl(option, arg):
    ctypes, libc = _libc()
    if libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed: {os.strerror(ctypes.get_errno())}")


def _drop_bounding_set():
    """Empty the capability bounding set (needs CAP_SETPCAP, which only this trusted prologue holds)."""
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):
        _prctl(24, cap)  # PR_CAPBSET_DROP


def _clear_capabilities():
    """capset(all zero): after the uid change only the inheritable set is left; clear it too."""
    ctypes, libc = _libc()
    header = ctypes.create_string_buffer(struct.pack("=Ii", 0x20080522, 0), 8)  # _LINUX_CAPABILITY_VERSION_3
    data = ctypes.create_string_buffer(bytes(24), 24)
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _install_seccomp(program):
    ctypes, libc = _libc()

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    buf = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.addressof(buf))
    # PR_SET_SECCOMP = 22, SECCOMP_MODE_FILTER = 2
    if libc.prctl(22, ctypes.c_ulong(2), ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"installing the seccomp filter failed: {os.strerror(err)}")


# Landlock (linux/landlock.h). Access rights per ABI version.
_LL_FS_EXECUTE, _LL_FS_WRITE_FILE, _LL_FS_READ_FILE, _LL_FS_READ_DIR = 1, 2, 4, 8
_LL_FS_REFER, _LL_FS_TRUNCATE, _LL_FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_LL_FILE_RIGHTS = _LL_FS_EXECUTE | _LL_FS_WRITE_FILE | _LL_FS_READ_FILE | _LL_FS_TRUNCATE | _LL_FS_IOCTL_DEV


def _landlock_abi():
    ctypes, libc = _libc()
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    return max(int(abi), 0)


def _landlock_handled(abi):
    fs = (1 << 13) - 1
    if abi >= 2:
        fs |= _LL_FS_REFER
    if abi >= 3:
        fs |= _LL_FS_TRUNCATE
    if abi >= 5:
        fs |= _LL_FS_IOCTL_DEV
    net = 3 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, with no rule: all TCP bind/connect refused
    scoped = 3 if abi >= 6 else 0  # ABSTRACT_UNIX_SOCKET | SIGNAL: nothing outside the sandbox
    return fs, net, scoped


def _open_paths(paths):
    """O_PATH descriptors of the paths that exist, opened now (possibly still as root)."""
    out = []
    for path in paths:
        try:
            out.append(os.open(path, os.O_PATH | os.O_CLOEXEC))
        except OSError:
            continue
    return out


def _landlock_enforce(abi, read_fds, rw_fds, dev_fds):
    """Create, fill and enforce the ruleset. Returns the ABI enforced (0 when the kernel has no Landlock)."""
    if abi < 1:
        return 0
    ctypes, libc = _libc()
    import stat
    fs, net, scoped = _landlock_handled(abi)
    attr = struct.pack("=QQQ", fs, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    attr_buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(444, attr_buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    read_rights = _LL_FS_READ_FILE | _LL_FS_READ_DIR | _LL_FS_EXECUTE
    for fds, rights in ((read_fds, read_rights), (rw_fds, fs), (dev_fds, _LL_FS_READ_FILE | _LL_FS_WRITE_FILE)):
        for fd in fds:
            allowed = rights & fs
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                allowed &= _LL_FILE_RIGHTS
            rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed, fd), 12)
            if libc.syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0)) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed: {os.strerror(ctypes.get_errno())}")
    if libc.syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    os.close(ruleset)
    return abi


def _safe_text(obj, limit=1000):
    try:
        text = str(obj)
    except BaseException:  # noqa: BLE001 - candidate-defined __str__ may raise anything
        text = "<unprintable>"
    text = "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "..."


def _type_name(obj):
    try:
        return _safe_text(type(obj).__name__, 80)
    except BaseException:  # noqa: BLE001
        return "object"


def _describe(what, exc, candidate_path, memory_bytes):
    """(kind, message) for an exception raised by candidate code."""
    import traceback
    where = ""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == candidate_path]
        if frames:
            where = f" (line {frames[-1].lineno}: {_safe_text(frames[-1].line, 200)})"
    except BaseException:  # noqa: BLE001, S110 - a location is a nicety; never fail on it
        pass
    name = _type_name(exc)
    if isinstance(exc, MemoryError):
        return "resource", (f"{what} ran out of memory (MemoryError){where}; the sandbox allows "
                            f"{memory_bytes / 2**30:.2f} GiB beyond the interpreter")
    if isinstance(exc, SyntaxError) and what == "Importing your code":
        return "error", (f"SyntaxError at line {exc.lineno}: {_safe_text(exc.msg, 300)}: "
                         f"{_safe_text((exc.text or '').strip(), 200)}")
    if isinstance(exc, SystemExit):
        return "error", (f"{what} called sys.exit({_safe_text(exc.code, 100)}){where}; "
                         "create_ansatz must return a QuantumCircuit, not exit")
    return "error", f"{what} raised {name}: {_safe_text(exc)}{where}"


def _print_traceback(exc):
    try:
        import traceback
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=20))
        _write(2, text[-20000:].encode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001, S110 - the traceback is a nicety; never fail on it
        pass


def _read_all(fd):
    """Everything in the memfd ``fd`` (closed afterwards)."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _set_sys_path(entries, *, reachable):
    """The import path; ``reachable``: kept reachable after the uid change (O_PATH, e.g. a prefix under /root)."""
    if reachable:
        path = []
        for entry in entries:
            if os.path.isdir(entry) and not _others_can_reach(entry):
                entry = f"/proc/self/fd/{os.open(entry, os.O_PATH | os.O_DIRECTORY)}"
            path.append(entry)
        sys.path[:] = path
    else:
        sys.path[:] = entries
    sys.dont_write_bytecode = True


def _set_limits(lim):
    """CPU, core, file size, open files, processes and address space (on top of what is mapped now)."""
    import resource

    cpu = int(lim["cpu"] + 0.999)
    with open("/proc/self/statm") as fh:
        vm_now = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    for res, soft, hard in ((resource.RLIMIT_CPU, cpu, cpu + 1),
                            (resource.RLIMIT_CORE, 0, 0),
                            (resource.RLIMIT_FSIZE, lim["fsize"], lim["fsize"]),
                            (resource.RLIMIT_NOFILE, lim["nofile"], lim["nofile"]),
                            (resource.RLIMIT_NPROC, lim["nproc"], lim["nproc"]),
                            (resource.RLIMIT_AS, vm_now + lim["memory"], vm_now + lim["memory"])):
        resource.setrlimit(res, (soft, hard))


def _drop_privileges(uid, gid):
    """Become ``uid``/``gid`` for good: no groups, no capabilities, root not regained (checked)."""
    _drop_bounding_set()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getgroups():
        raise OSError("dropping privileges did not stick")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise OSError("could regain root after dropping privileges")
    _clear_capabilities()
    _prctl(4, 1)  # PR_SET_DUMPABLE: own /proc/self/fd usable again after the uid change


def _prepare(cfg):
    """Everything before the candidate runs. Returns what _run_candidate needs."""
    code = _read_all(cfg["code_fd"])

    drop = cfg.get("drop")
    _set_sys_path(cfg["sys_path"], reachable=bool(drop))

    import io

    import numpy  # noqa: F401 - warm imports (trusted) before the candidate
    import qiskit  # noqa: F401
    from qiskit import QuantumCircuit, qpy

    _set_limits(cfg["limits"])
    ll = cfg["landlock"]
    abi = _landlock_abi() if ll["enabled"] else 0
    read_fds = _open_paths(ll["read"] + [p for p in sys.path if not p.startswith("/proc/self/fd/")]) if abi else []
    dev_fds = _open_paths(ll["devices"]) if abi else []
    if drop:
        _drop_privileges(*drop)

    parent = cfg.get("parent_pid")
    if parent:  # fallback: no --die-with-parent, so die with the worker ourselves (set after the uid change)
        _prctl(1, 9)  # PR_SET_PDEATHSIG = SIGKILL
        if os.getppid() != parent:
            raise OSError("the evaluating process is already gone")

    workdir = cfg["workdir"]
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    os.chdir(workdir)
    candidate_path = os.path.join(workdir, "candidate.py")
    with open(candidate_path, "wb") as fh:
        fh.write(code)
    rw_fds = _open_paths([workdir]) if abi else []

    _prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
    abi = _landlock_enforce(abi, read_fds, rw_fds, dev_fds)
    for fd in read_fds + rw_fds + dev_fds:
        os.close(fd)
    for program in cfg["seccomp"]:
        _install_seccomp(bytes.fromhex(program))
    return candidate_path, abi, QuantumCircuit, qpy, io


def _import_candidate(util, candidate_path, memory, fatal):
    """The candidate's ``create_ansatz`` (its module imported as ``candidate``); anything else is ``fatal``."""
    try:
        spec = util.spec_from_file_location("candidate", candidate_path)
        module = util.module_from_spec(spec)
        sys.modules["candidate"] = module
        spec.loader.exec_module(module)
        if _getpid() != _OWN_PID:
            _exit(0)
        fn = getattr(module, "create_ansatz", None)
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included on purpose
        if _getpid() != _OWN_PID:
            _exit(0)
        _print_traceback(exc)
        fatal(*_describe("Importing your code", exc, candidate_path, memory))
    if fn is None:
        fatal("error", "The code does not define create_ansatz; define a module-level function "
                       "create_ansatz(num_qubits: int) -> QuantumCircuit")
    if not callable(fn):
        fatal("error", f"create_ansatz is {_type_name(fn)}, not a function; define "
                       "def create_ansatz(num_qubits: int) -> QuantumCircuit")
    return fn


def _run_candidate(cfg, candidate_path, qc_class, qpy, io):
    import importlib.util
    out = cfg["result_fd"]
    memory = cfg["limits"]["memory"]
    sizes = cfg["sizes"]
    goal = cfg.get("goal", sizes[0])
    max_bytes = cfg["max_circuit_bytes"]
    version = cfg["qpy_version"]
    dump, bytes_io, dumps = qpy.dump, io.BytesIO, json.dumps

    def fatal(kind, message):
        _send(out, b"E", sizes[0], dumps({"kind": kind, "message": message}).encode())
        _exit(0)

    def send_circuit(n, circuit):
        """Send the circuit as QPY; (kind, message) when it cannot be serialised or is too large."""
        buf = bytes_io()
        try:
            dump(circuit, buf, version=version)
        except BaseException as exc:  # noqa: BLE001
            return _describe(f"Serialising the circuit of create_ansatz({n}) (QPY)", exc, candidate_path, memory)
        data = buf.getvalue()
        if len(data) > max_bytes:
            return "resource", (f"the circuit of create_ansatz({n}) serialises to {len(data)} bytes, over the limit "
                                f"of {max_bytes} bytes")
        _send(out, b"C", n, data)
        return None, None

    fn = _import_candidate(importlib.util, candidate_path, memory, fatal)
    for n in sizes:
        kind = message = None
        try:
            circuit = fn(n)
            if _getpid() != _OWN_PID:
                _exit(0)
            if not isinstance(circuit, qc_class):
                kind, message = "error", f"create_ansatz({n}) returned {_type_name(circuit)}, expected QuantumCircuit"
            else:
                kind, message = send_circuit(n, circuit)
        except BaseException as exc:  # noqa: BLE001
            if _getpid() != _OWN_PID:
                _exit(0)
            _print_traceback(exc)
            kind, message = _describe(f"create_ansatz({n})", exc, candidate_path, memory)
        if message is not None:
            if n == goal:
                fatal(kind, message)
            _send(out, b"F", n, dumps({"kind": kind, "message": message}).encode())
    _send(out, b"D")
    _exit(0)


def main():
    try:
        cfg = json.loads(_read_all(int(sys.argv[1])))  # over a memfd: host paths and pids stay out of argv
        candidate_path, abi, qc_class, qpy, io = _prepare(cfg)
        _send(cfg["result_fd"], b"S", 0, json.dumps({"landlock": abi, "uid": os.getuid(),
                                                     "pid": _OWN_PID}).encode())
    except BaseException as exc:  # noqa: BLE001
        _setup_failed(f"{type(exc).__name__}: {exc}")
    _run_candidate(cfg, candidate_path, qc_class, qpy, io)


if __name__ == "__main__":
    main()
