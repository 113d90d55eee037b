"""Multiprocess metric files: fold a dead process's files into one archive per type.

prometheus_client writes one file per process and metric type; a counter's file must outlive its
process (the totals would drop otherwise), so with worker recycling (gunicorn max_requests, pool
children) the directory, and every scrape's work, grows without bound. When a process exits, its
counter and histogram values are added into `<type>_archive.db` and the process's file removed;
`mostrecent` gauges keep the newer value. Scrapes take the directory's lock shared and the fold
takes it exclusively, so no scrape sees a value twice or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from prometheus_client.mmap_dict import MmapedDict

from codex import env

_ADDED = ("counter", "histogram", "summary")
_LOCK = ".codex-metrics.lock"


@contextlib.contextmanager
def directory_lock(path: str, *, exclusive: bool) -> Iterator[None]:
    """flock on the directory's lock file (shared for readers, exclusive for the fold)."""
    with open(os.path.join(path, _LOCK), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fold(source: str, archive: str, *, newest: bool) -> None:
    values = MmapedDict.read_all_values_from_file(source)
    target = MmapedDict(archive)
    try:
        for key, value, timestamp, _ in values:
            current, current_ts = target.read_value(key)
            if newest:
                if timestamp >= current_ts:
                    target.write_value(key, value, timestamp)
            else:
                target.write_value(key, current + value, max(timestamp, current_ts))
    finally:
        target.close()
    os.remove(source)


def archive_dead_process(pid: int, path: str | None = None) -> int:
    """Fold process `pid`'s counter, histogram and mostrecent-gauge files; return files folded."""
    path = path or env.text("PROMETHEUS_MULTIPROC_DIR")
    if not path or not os.path.isdir(path):
        return 0
    folded = 0
    with directory_lock(path, exclusive=True):
        for typ in _ADDED:
            source = os.path.join(path, f"{typ}_{pid}.db")
            if os.path.exists(source):
                _fold(source, os.path.join(path, f"{typ}_archive.db"), newest=False)
                folded += 1
        source = os.path.join(path, f"gauge_mostrecent_{pid}.db")
        if os.path.exists(source):
            _fold(source, os.path.join(path, "gauge_mostrecent_archive.db"), newest=True)
            folded += 1
    return folded
