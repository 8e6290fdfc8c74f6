"""The screens' gate: at most n at once, admitted first come, first served."""

from __future__ import annotations

import threading
import time

from api.app import FairGate


def test_at_most_n_at_once_in_arrival_order():
    gate, order, active, peak = FairGate(2), [], [0], [0]
    lock = threading.Lock()

    def work(i):
        with gate:
            with lock:
                order.append(i)
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.02)
            with lock:
                active[0] -= 1

    threads = []
    for i in range(12):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(0.005)  # arrivals in a known order
    for t in threads:
        t.join()
    assert peak[0] == 2 and order == list(range(12))
