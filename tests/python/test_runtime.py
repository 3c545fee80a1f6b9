"""fit releases the GIL, and Ctrl-C stops it within an epoch leaving a usable model."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import siamrec
from conftest import needs_ml100k, small_model


@needs_ml100k
def test_python_threads_run_while_fit_runs(ml100k):
    m = small_model(**{"train.epochs": 3})
    count = [0]
    done = threading.Event()

    def spin():
        while not done.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = count[0]
        start = time.perf_counter()
        m.fit(ml100k.train, progress=False, threads=1)
        seconds = time.perf_counter() - start
        during = count[0] - before
    finally:
        done.set()
        t.join()
    # With the GIL held for the whole fit the spinner would advance only between epochs.
    assert seconds > 0.3 and during > 20000, (seconds, during)


@needs_ml100k
def test_ctrl_c_stops_within_an_epoch_and_keeps_a_usable_model(ml100k):
    m = small_model(**{"train.epochs": 200})
    ends = []
    sent = []

    def interrupt():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    def on_epoch(e):
        ends.append(time.perf_counter())
        if len(ends) == 2:
            threading.Timer(0.05, interrupt).start()

    with pytest.raises(KeyboardInterrupt):
        m.fit(ml100k.train, progress=False, threads=2, callback=on_epoch)
    assert sent, "the interrupt was never sent"
    after = [t for t in ends if t > sent[0]]
    assert len(after) <= 1, f"{len(after)} epochs ended after Ctrl-C"
    assert len(ends) < 10
    assert m.fitted
    items, scores = m.recommend([1, 2], k=10)
    assert items.shape == (2, 10) and np.isfinite(scores).all()
    # The interpreter's own Ctrl-C handling is back.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@needs_ml100k
def test_callback_stops_training_and_its_exceptions_propagate(ml100k):
    m = small_model(**{"train.epochs": 50})
    m.fit(ml100k.train, progress=False, threads=2, callback=lambda e: e["epoch"] < 3)
    assert len(m.history) == 3 and m.fitted

    def boom(e):
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        m.fit(ml100k.train, progress=False, threads=2, callback=boom)
    assert len(m.history) == 1
