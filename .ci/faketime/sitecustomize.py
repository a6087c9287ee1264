# Only for running the suite under libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1,
# whose clock_nanosleep(TIMER_ABSTIME) returns EINVAL: sleep through select() instead.
import select
import time


def _sleep(seconds):
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        select.select([], [], [], left)

time.sleep = _sleep
