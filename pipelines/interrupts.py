"""Stopping a load when asked: SIGINT (Ctrl-C) and SIGTERM.

While `stop_on_signals()` is active in the main thread, the first of these signals records
itself, wakes every waiting retry or rate-budget sleep (`sleep` below) and raises `Interrupted`
where the main thread is. `Interrupted` is a BaseException on purpose: no `except Exception`
on the way up swallows it, and the `finally` blocks still run, so a lake write in flight
finishes (or leaves only its temp file) before the load stops. Worker threads see the stop at
their next sleep and raise `Interrupted` there, so a thread pool drains in moments instead of
riding out a retry window.

The record stays until `reset()`: a step that starts after the signal refuses to run
(the orchestration asks `received()`), so nothing retries what the user stopped.

`watch()` is for a command's outermost scope. It also notes signals whose Python handler is
someone else's (Dagster installs its own around and between steps) through the interpreter's
wakeup fd, and it guarantees the stop: should the process still run `grace_s` after the signal
(Dagster sleeping before a step retry does not wake for a signal), it ends it with the
signal's exit status. That is safe because every write is crash-safe (`make reliability`
SIGKILLs loads at random moments and proves a rerun complete).
"""

import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_stop = threading.Event()
_received: list[int] = []


class Interrupted(BaseException):
    """A stop signal arrived; `exit_code` is the shell's convention, 128 + signal number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal_name(signum)}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def received() -> int | None:
    """The first stop signal received since the last `reset()`, if any."""
    return _received[0] if _received else None


def reset() -> None:
    """Forget an earlier stop (a new load in the same process starts clean)."""
    _received.clear()
    _stop.clear()


def _handle(signum: int, _frame: FrameType | None) -> None:
    if not _received:
        _received.append(signum)
    _stop.set()
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Raise `Interrupted` in the main thread on SIGINT or SIGTERM while inside. Elsewhere
    (signal handlers can only be set from the main thread) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, _handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# How long a process may take to wind down after a stop signal before `watch` ends it.
GRACE_S = 10.0


@contextmanager
def watch(
    grace_s: float = GRACE_S, on_overrun: Callable[[int], None] | None = None
) -> Iterator[None]:
    """Start clean, stop on SIGINT/SIGTERM (as `stop_on_signals`), note every stop signal
    whoever handles it, and end the process `grace_s` after one if it is still inside.
    `on_overrun(signum)` runs just before that (say, to print why)."""
    reset()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    quit_read, quit_write = os.pipe()
    for fd in (read_fd, write_fd):
        os.set_blocking(fd, False)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    done = threading.Event()

    def watcher() -> None:
        while True:
            ready, _, _ = select.select([read_fd, quit_read], [], [])
            if quit_read in ready:
                return
            signums = [b for b in os.read(read_fd, 512) if b in STOP_SIGNALS]
            if not signums:
                continue
            if not _received:
                _received.append(signums[0])
            _stop.set()
            if not done.wait(grace_s):
                signum = received() or signums[0]
                if on_overrun is not None:
                    on_overrun(signum)
                os._exit(128 + signum)
            return

    thread = threading.Thread(target=watcher, name="stop-signal-watch", daemon=True)
    thread.start()
    try:
        with stop_on_signals():
            yield
    finally:
        done.set()
        os.write(quit_write, b"x")
        thread.join()
        signal.set_wakeup_fd(previous_fd)
        for fd in (read_fd, write_fd, quit_read, quit_write):
            os.close(fd)


def check() -> None:
    """Raise `Interrupted` if a stop signal was received."""
    signum = received()
    if signum is not None:
        raise Interrupted(signum)


def sleep(seconds: float) -> None:
    """`time.sleep` that ends early, raising `Interrupted`, when a stop signal arrives."""
    check()
    if _stop.wait(max(0.0, seconds)):
        check()
