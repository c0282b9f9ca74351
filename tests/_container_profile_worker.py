"""Play the cpu-worker container's confinement, then use the sandbox (started by tests/test_deploy_seccomp.py as
uid 65534, like the image's non-root user, with no capabilities). Not a test module.

Reads ``{"profile": path|null, "python": ..., "site": [...]}`` on stdin. With a profile, the Docker-format seccomp
profile (deploy/seccomp/cpu-worker.json) is compiled with libseccomp, as runc does, and loaded with
no_new_privs before the sandbox is touched; every process started afterwards (bubblewrap, the candidate) inherits
it. Prints one JSON object: the isolation the sandbox found, a real candidate's result, and what a denied call
(keyctl) returned.
"""

import ctypes
import errno
import json
import os
import sys

ARCHES = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X32": 0x4000003E,
          "SCMP_ARCH_AARCH64": 0xC00000B7, "SCMP_ARCH_ARM": 0x40000028}
ACTIONS = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_ERRNO": 0x00050000}
KEYCTL = {"x86_64": 250, "aarch64": 219}


def load_profile(path: str) -> dict:
    with open(path) as fh:
        profile = json.load(fh)
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    ctx = lib.seccomp_init(ACTIONS[profile["defaultAction"]])
    for arch in profile.get("architectures", []):
        rc = lib.seccomp_arch_add(ctx, ARCHES[arch])
        assert rc in (0, -errno.EEXIST), f"seccomp_arch_add({arch}) = {rc}"
    denied = 0
    for rule in profile["syscalls"]:
        action = ACTIONS[rule["action"]] | (rule.get("errnoRet", 0) & 0xFFFF)
        for name in rule["names"]:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:  # unknown on this architecture: runc skips it too
                continue
            if lib.seccomp_rule_add(ctx, action, nr, 0) == 0:
                denied += 1
    rc = lib.seccomp_load(ctx)  # sets no_new_privs first (libseccomp's default)
    assert rc == 0, f"seccomp_load failed: {rc}"
    return {"denied_rules": denied}


def main() -> None:
    job = json.load(sys.stdin)
    out = {"uid": os.getuid(), "profile": None}
    if job["profile"]:
        out["profile"] = load_profile(job["profile"])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, *job["site"]]
    from workers.evaluation.sandbox import SandboxConfig, isolation_status, run_candidate

    config = SandboxConfig(python=job["python"], extra_read_paths=tuple(job["site"]))
    status = isolation_status(config)
    out["isolation"], out["summary"] = status.mode, status.summary()
    result = run_candidate(job["code"], [4], config=SandboxConfig(python=job["python"], isolation="bwrap",
                                                                  extra_read_paths=tuple(job["site"])))
    out["candidate"] = {"status": result.status, "error": result.error, "isolation": result.isolation,
                        "sizes": sorted(result.circuits_qpy)}
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    import platform

    # keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create=1): succeeds unless seccomp denies it
    rc = libc.syscall(KEYCTL[platform.machine()], 0, ctypes.c_long(-3), 1)
    out["keyctl"] = {"rc": rc, "errno": errno.errorcode.get(ctypes.get_errno(), "") if rc < 0 else ""}
    print(json.dumps(out))


main()
