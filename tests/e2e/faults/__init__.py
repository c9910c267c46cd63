"""Helpers of the fault suite (`test_faults.py`): a fake serial console that records who wrote
when, a TCP proxy between each node and Redis that the test can cut, the processes (Redis and
serialgate nodes) the test starts, kills, pauses and restarts, the SSH and API clients that
drive sessions and pushes, and the history checker that judges what they all recorded."""
