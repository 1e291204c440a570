"""The collector pause of bulk stages: off inside, back as it was afterwards, also when runs overlap or fail."""

from __future__ import annotations

import gc
import threading

import pytest

from digest.gcpause import paused_gc


@pytest.fixture(autouse=True)
def _restore_gc():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_off_inside_and_back_after_even_on_error():
    gc.enable()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_overlapping_runs_on_two_threads_turn_it_back_on_only_when_both_end():
    gc.enable()
    first_in, first_may_end = threading.Event(), threading.Event()

    def first():
        with paused_gc():
            first_in.set()
            first_may_end.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with paused_gc():  # starts after the first and ends before it
        pass
    assert not gc.isenabled()  # the first run is still going
    first_may_end.set()
    thread.join(5)
    assert gc.isenabled()
