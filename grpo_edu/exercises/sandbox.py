"""Isolation of one submission's process, with what Linux gives (entered by ``runner``).

Three levels; ``grade`` picks the strongest that works here (it probes each once): ``full``
when it runs as root on Linux, ``user`` when it does not but the kernel lets unprivileged users
create user namespaces, else ``basic``.

``full`` (root): the runner unshares mount, PID, network and IPC namespaces and forks; the
child is process 1 of a new PID namespace, so when it dies every process it started dies with
it, whatever session it moved to. The child then

- builds a new root in a fresh, size-capped tmpfs and ``chroot``s into it: read-only binds of
  the system folders (``SYSTEM_PATHS``), the interpreter, its packages and grpo_edu's checkout
  (``expose``), a minimal /dev (null, zero, random, ...), a new /proc, and a writable /tmp with
  HOME and the working copy of the submission; nothing else of the machine is there (no home
  folders, no other checkouts, no submissions), and nothing it writes outlives it;
- covers what lies inside the exposed folders but must stay unseen (``hide``: the instructor
  notebooks, the checkout's git history, the submissions folder, the grades CSV) with empty
  read-only mounts;
- sets rlimits (address space, CPU seconds, file size, processes, open files, no core files),
  switches to its own unprivileged uid and gid (one per parallel slot, no supplementary groups,
  ``no_new_privs``): it cannot signal the grader (which it cannot see either), write any
  exposed file, or leave the chroot, and a fork bomb stops at ``processes``;
- has no network (an empty network namespace).

The parent stays root, runs no student code, forwards SIGINT (the cell timeout) to the child,
answers SIGTERM with SIGKILL of the child (the notebook timeout: the whole namespace dies), and
exits with the child's status.

``user`` (not root): the same namespaces, new root and rlimits inside an unprivileged user
namespace; instead of a uid of its own, the child drops every capability (``enter_user``), so it
cannot undo its mounts. Its processes count against the grading user's process limit.

``basic`` (no namespaces): the same rlimits, its own session, a scrubbed
environment, HOME and TMPDIR in a private folder, and the working copy there. It does not stop
the student's code from reading or writing files the grading user can (run the grader as root,
e.g. in a container, for that), from reaching the network, or from leaving a process behind that
moved to another session; the number of processes is capped per user, the grader's included.

No level caps the CPU share of a submission: on a busy machine one can slow its neighbours
down (each keeps its own wall-clock budget), and memory is capped per process, not per sandbox.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x20000, 0x8000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_SECUREBITS = 1, 24, 28
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 38, 47
SECURE_NO_ROOT = 0b1111
"""SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and their locks: uid 0 in the namespace gains nothing."""
WORKDIR, HOME = "/tmp/work", "/tmp/home"
"""Where the submission's copy and HOME are inside a full sandbox (its private /tmp)."""


@dataclass(frozen=True)
class Limits:
    """What one submission (one notebook) may use. Defaults suit the course's notebooks."""

    timeout: float = 180.0
    """Wall-clock seconds for the whole notebook (the training check takes 10-30 s)."""
    cell_timeout: float = 90.0
    """Seconds per cell before it is interrupted (SIGINT); the next cells still run."""
    grace: float = 3.0
    """Seconds an interrupted cell gets to stop before the whole notebook is killed (SIGKILL)."""
    memory_mb: int = 3072
    """Address space per process (RLIMIT_AS). The training check peaks at ~2.3 GB of address
    space (torch and transformers reserve most of it), the other notebooks at ~0.7 GB."""
    cpu_seconds: int = 300
    """CPU seconds per process (RLIMIT_CPU)."""
    file_mb: int = 64
    """Largest file a process may write (RLIMIT_FSIZE)."""
    tmp_mb: int = 512
    """Size of the private /tmp (full isolation): the working copy, HOME and temporary files."""
    processes: int = 64
    """Processes and threads of the sandbox's user (RLIMIT_NPROC): stops fork bombs."""
    open_files: int = 512
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    output_kb: int = 256
    """Printed output kept per notebook (the first and last halves); the rest is dropped."""
    results_mb: int = 48
    """Most bytes the result channel carries (values and the trained weights)."""

    def check(self) -> None:
        """``ValueError`` naming the first field that is not positive."""
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"Limits.{name} must be > 0, got {value!r}")


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    args = (_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data or None))
    _check(_libc().mount(*args), f"mount {target}")


def set_limits(limits: Limits, extra_processes: int = 0) -> None:
    """The rlimits of ``limits`` for this process (inherited by its children)."""
    mb = 2**20
    for which, value in (
        (resource.RLIMIT_AS, limits.memory_mb * mb),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.file_mb * mb),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_NPROC, limits.processes + extra_processes),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails; it does not kill


# ---------------------------------------------------------------------- full isolation
def enter_full(config: dict) -> None:
    """Namespaces, mounts, limits, unprivileged uid; returns in the sandboxed child only."""
    _check(_libc().unshare(NAMESPACES), "unshare")
    _fork_into_namespace()
    limits = Limits(**config["limits"])
    _private_mounts(config, limits)
    set_limits(limits)
    uid, gid = config["uid"], config["gid"]
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(no_new_privs)")
    _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(pdeathsig)")
    for path in (HOME, WORKDIR):
        os.makedirs(path, mode=0o700, exist_ok=True)
    os.chdir(WORKDIR)


def _fork_into_namespace() -> None:
    """Fork; the parent supervises the child (process 1 of the new PID namespace) and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the child's pid is known
    child = os.fork()
    if child:
        _supervise(child)  # never returns
    os.setpgid(0, 0)  # a group of its own: kill(0, ...) cannot reach the parent
    signal.signal(signal.SIGINT, signal.default_int_handler)


# ------------------------------------------------------------- user-namespace isolation
def enter_user(config: dict) -> None:
    """Full isolation for a grader that is not root: an unprivileged user namespace.

    The same namespaces, new root and rlimits as ``enter_full``; instead of a uid of its own
    (an unprivileged user can map only itself), the child drops every capability (bounding and
    ambient sets, securebits locked, ``no_new_privs``), so it cannot undo its mounts. What it
    still shares with the grading user: the count of processes (``processes`` is added to the
    user's current count), and it runs as that user's uid on the machine.
    """
    uid, gid = os.getuid(), os.getgid()
    limits = Limits(**config["limits"])
    set_limits(limits, extra_processes=_user_processes())
    _check(_libc().unshare(CLONE_NEWUSER | NAMESPACES), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _fork_into_namespace()
    _private_mounts(config, limits)
    _drop_capabilities()
    _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(pdeathsig)")
    for path in (HOME, WORKDIR):
        os.makedirs(path, mode=0o700, exist_ok=True)
    os.chdir(WORKDIR)


def _drop_capabilities() -> None:
    libc = _libc()
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    _check(libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0), "prctl(ambient clear)")
    _check(libc.prctl(PR_SET_SECUREBITS, SECURE_NO_ROOT, 0, 0, 0), "prctl(securebits)")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(no_new_privs)")


def _supervise(child: int) -> None:
    """The namespace's root-owned parent: forward signals, mirror the child's exit status."""

    def forward(signum, frame):
        os.kill(child, signal.SIGINT if signum == signal.SIGINT else signal.SIGKILL)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    os.closerange(3, 1024)  # the result channel stays with the child alone
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(1)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def _private_mounts(config: dict, limits: Limits) -> None:
    """A new root made of read-only binds of what Python needs, a private /tmp, a minimal /dev."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = _minimal(list(SYSTEM_PATHS) + list(config["expose"]))
    fds = {p: os.open(p, os.O_PATH) for p in keep if os.path.lexists(p) and not os.path.islink(p)}
    folders = {p for p in fds if os.path.isdir(p)}  # now: the new root may cover them (/tmp/...)
    links = {p: os.readlink(p) for p in keep if os.path.islink(p)}
    root = "/tmp"  # the new root: a fresh tmpfs (the host's /tmp is not in it)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={limits.tmp_mb}m,mode=755")
    for path, target in links.items():
        os.makedirs(os.path.dirname(root + path), mode=0o755, exist_ok=True)
        os.symlink(target, root + path)
    for path, fd in fds.items():
        _bind(fd, root + path, path in folders)
    for path in config["hide"]:
        if any(path == k or path.startswith(k.rstrip("/") + "/") for k in fds):
            _hide(root + path)
    _devices(root)
    for path in ("/tmp", "/var/tmp"):
        os.makedirs(root + path, exist_ok=True)
        os.chmod(root + path, 0o1777)
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for fd in fds.values():
        os.close(fd)
    os.chdir(root)
    os.chroot(".")
    os.chdir("/")


SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
"""Read-only in every sandbox (with the interpreter, its packages and grpo_edu's checkout)."""
DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}


def _minimal(paths: list[str]) -> list[str]:
    """``paths`` without those inside another one."""
    paths = sorted(set(paths))
    return [
        p for p in paths if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths)
    ]


def _bind(fd: int, target: str, is_dir: bool) -> None:
    """``fd``'s file or folder (and what is mounted below it), read-only at ``target``."""
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        open(target, "a").close()
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)


def _devices(root: str) -> None:
    """/dev with the character devices Python uses, and a private /dev/shm."""
    os.makedirs(root + "/dev/shm", mode=0o755, exist_ok=True)
    for name in DEVICES:
        fd = os.open(f"/dev/{name}", os.O_PATH)
        _bind(fd, f"{root}/dev/{name}", False)
        _mount(None, f"{root}/dev/{name}", None, MS_BIND | MS_REMOUNT | MS_NOSUID)  # writable
        os.close(fd)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"{root}/dev/{name}")
    _mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")


def _hide(path: str) -> None:
    """An empty read-only mount over ``path`` (a folder) or /dev/null over it (a file)."""
    if os.path.isdir(path):
        _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=755")
        _mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    elif os.path.exists(path):
        _mount("/dev/null", path, None, MS_BIND)
        _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


# --------------------------------------------------------------------- basic isolation
def _user_processes() -> int:
    """Processes (threads included) of this user now; 0 where /proc is not there."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def enter_basic(config: dict) -> None:
    """rlimits (processes counted on top of this user's), the private working folder."""
    set_limits(Limits(**config["limits"]), extra_processes=_user_processes())
    os.chdir(config["workdir"])


def enter(config: dict) -> None:
    """Enter the sandbox that ``config`` describes (``isolation``: full, user or basic)."""
    {"full": enter_full, "user": enter_user, "basic": enter_basic}[config["isolation"]](config)
    sys.path.append(os.getcwd())  # the student's own modules import, after the installed ones


def sandbox_paths() -> list[str]:
    """Folders a sandboxed Python must read: the interpreter, its packages, grpo_edu's checkout."""
    import grpo_edu

    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    candidates |= {p for p in sys.path if p and os.path.isdir(p)}
    candidates.add(str(Path(grpo_edu.__file__).resolve().parents[1]))
    candidates.add(str(Path(os.path.realpath(sys.executable)).parents[1]))
    paths = sorted({os.path.realpath(p) for p in candidates})
    return [p for p in paths if not any(p != q and p.startswith(q + os.sep) for q in paths)]
