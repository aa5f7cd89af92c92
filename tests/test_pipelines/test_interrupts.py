"""The stop-signal helper: a signal raises in the main thread, wakes sleeping workers, and is
remembered until reset."""

import os
import signal
import threading

import pytest

from pipelines import interrupts


@pytest.fixture(autouse=True)
def clean_state():
    interrupts.reset()
    yield
    interrupts.reset()


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_raises_interrupted_and_is_remembered(signum, exit_code):
    before = signal.getsignal(signum)
    with pytest.raises(interrupts.Interrupted) as caught, interrupts.stop_on_signals():
        os.kill(os.getpid(), signum)
        # The handler runs at the next bytecode boundary: this loop never ends on its own.
        while True:
            interrupts.sleep(0.01)
    assert caught.value.exit_code == exit_code
    assert str(caught.value) == f"interrupted by {signal.Signals(signum).name}"
    assert interrupts.received() == signum
    assert signal.getsignal(signum) is before
    with pytest.raises(interrupts.Interrupted):
        interrupts.check()
    interrupts.reset()
    assert interrupts.received() is None
    interrupts.check()


def test_a_worker_sleeping_through_a_retry_wait_wakes_on_the_signal():
    woke: list[BaseException] = []
    started = threading.Event()

    def worker() -> None:
        started.set()
        try:
            interrupts.sleep(3600)
        except interrupts.Interrupted as exc:
            woke.append(exc)

    thread = threading.Thread(target=worker)
    with pytest.raises(interrupts.Interrupted), interrupts.stop_on_signals():
        thread.start()
        started.wait()
        os.kill(os.getpid(), signal.SIGINT)
        thread.join()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(woke) == 1 and woke[0].signum == signal.SIGINT


def test_outside_the_main_thread_it_installs_nothing():
    seen: list[object] = []

    def other() -> None:
        with interrupts.stop_on_signals():
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [before]
