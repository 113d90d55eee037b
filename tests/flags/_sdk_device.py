"""A tiny device program using the SDK, run as a separate process by test_sdk_live.py.

python _sdk_device.py produce BASE_URL KEY_ID SECRET QUEUE N   # track N, then sync forever
python _sdk_device.py drain   BASE_URL KEY_ID SECRET QUEUE     # sync until the queue is empty
"""

from __future__ import annotations

import sys
import time

from codex_sdk import Client


def main() -> int:
    mode, base_url, key_id, secret, queue = sys.argv[1:6]
    client = Client(
        base_url,
        key_id,
        secret,
        queue_path=queue,
        timeout=2.0,
        lease_sec=3.0,  # rows leased by a killed process come back after 3 s
        backoff_base=0.05,
        backoff_max=0.5,
        config_refresh_sec=1.0,
        max_batch_events=10,
    )
    if mode == "produce":
        for i in range(int(sys.argv[6])):
            client.track("device.tick", {"i": i}, idempotency_key=f"kill-{i:04d}")
        print("TRACKED", flush=True)
        client.start()
        while True:
            time.sleep(1)
    client.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.status()
        if status.queue_depth == 0 and status.in_flight == 0:
            print("DRAINED", flush=True)
            client.close(timeout=2)
            return 0
        time.sleep(0.05)
    print("NOT DRAINED", client.status().as_dict(), flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
