"""The fork server of process-isolated jobs: `python -m executor.adapters.zygote <fd> <module>...`.

Started once by an executor (`adapters/isolation.py`), it imports the job types' modules and
then forks one worker per job, so a job pays for a fork, not for an interpreter start. It talks
to the executor over a SOCK_SEQPACKET socket (inherited as `<fd>`), one JSON message per packet:

    executor -> zygote: {"start": "<job id>"}, with the worker's socket attached (SCM_RIGHTS)
    zygote -> executor: {"started": "<job id>", "pid": 1234}
    zygote -> executor: {"exited": 1234, "code": -24,   (negative: killed by that signal)
                         "cpu_s": 0.42, "max_rss_kb": 51200}   (the worker's own usage)

It reaps its workers (it is their parent) and reports how each ended. It exits when the
executor's end of the socket closes; on Linux the kernel also kills it when the executor dies
and kills a worker when the fork server dies (PR_SET_PDEATHSIG), so an executor killed with -9
leaves no workers behind. (multiprocessing's forkserver does the same job, but on
Python 3.11 it runs the parent's main script again in every child, which for the executor's
console script means importing the whole service per job; and it pickles.)"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback

from executor.adapters import worker

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    die_with_parent(os.getppid())
    control = socket.socket(fileno=int(argv[1]))
    for module in argv[2:]:
        try:
            importlib.import_module(module)
        except Exception:  # its jobs fail with the error in the worker; the others run
            traceback.print_exc()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the executor's to handle
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is control:
                    if not _serve_request(control, selector, (wake_r, wake_w)):
                        return
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                    _reap(control)


def _serve_request(
    control: socket.socket, selector: selectors.BaseSelector, wake: tuple[int, int]
) -> bool:
    """Forks a worker for one request; False when the executor is gone."""
    data, fds, _, _ = socket.recv_fds(control, 65536, 1)
    if not data:
        return False
    job_id = str(json.loads(data)["start"])
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return True
    server = os.getpid()
    pid = os.fork()
    if pid == 0:
        die_with_parent(server)
        _be_worker(control, selector, wake, fds[0])
    os.close(fds[0])
    control.send(json.dumps({"started": job_id, "pid": pid}).encode())
    return True


def _be_worker(
    control: socket.socket, selector: selectors.BaseSelector, wake: tuple[int, int], fd: int
) -> None:
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        selector.close()
        control.close()
        for end in wake:
            os.close(end)
        worker.main(socket.socket(fileno=fd))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def die_with_parent(parent: int) -> None:
    """Asks the kernel (Linux) to kill this process when its parent dies; exits at once if
    `parent` is already gone. Elsewhere a no-op: the worker's alarm is the backstop there."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def _reap(control: socket.socket) -> None:
    """Reports each ended worker: its exit code and what it used (CPU seconds, user and
    system, and its peak resident memory, from the kernel's accounting of the child)."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        message = {
            "exited": pid,
            "code": code,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_kb": usage.ru_maxrss,  # kilobytes on Linux
        }
        with contextlib.suppress(OSError):
            control.send(json.dumps(message).encode())


if __name__ == "__main__":
    main(sys.argv)
