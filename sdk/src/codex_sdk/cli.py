"""The `codex-sdk` command line: login, status, send, run, dead-letters."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from . import credentials
from ._version import __version__
from .client import Client
from .credentials import Credentials, CredentialsError
from .errors import ServerError, TransportError

log = logging.getLogger("codex_sdk.cli")

# Exit codes (documented in README): 2 is argparse's usage error.
EXIT_OK, EXIT_FAIL, EXIT_QUEUED = 0, 1, 3


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Accepted before or after the sub-command; SUPPRESS keeps a sub-parser from
    # overwriting a value given before it.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="credentials file (default $CODEX_SDK_CONFIG or ~/.codex-sdk/credentials.json)",
    )
    parser.add_argument(
        "--queue", type=Path, default=default, help="queue SQLite file (default per key)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="debug logging",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codex-sdk", description="Codex Ingest device SDK")
    parser.add_argument("--version", action="version", version=f"codex-sdk {__version__}")
    _common(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _common(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("login", parents=[common], help="store credentials from provisioning JSON")
    p.add_argument(
        "--from-json", required=True, help="output of provision_tenant --json ('-' = stdin)"
    )
    p.add_argument("--device", help="pick the key of this device")
    p.add_argument("--base-url", help="server URL (required if the JSON has none)")

    p = sub.add_parser("status", parents=[common], help="queue, last sync and server config")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--event", metavar="KEY", help="instead: what happened on the server to this event"
    )

    p = sub.add_parser("send", parents=[common], help="track one event and flush it")
    p.add_argument("type", help="event type, e.g. door.opened")
    p.add_argument("--payload", default="{}", help="JSON object (default {})")
    p.add_argument("--idempotency-key", help="default: a new UUID")
    p.add_argument(
        "--occurred-at", help="RFC 3339 time (default now; fix it to resend a key as-is)"
    )
    p.add_argument("--source", default="cli", help="event source (default cli)")
    p.add_argument("--force", action="store_true", help="send even if syncEnabled is false")
    p.add_argument("--timeout", type=float, default=30.0, help="flush timeout in seconds")

    p = sub.add_parser("run", parents=[common], help="sync in the foreground until Ctrl-C")
    p.add_argument(
        "--config-refresh", type=float, help="poll /config every SEC instead of its max-age"
    )
    p.add_argument(
        "--heartbeat", type=float, help="track an sdk.heartbeat event every SEC (drills)"
    )

    p = sub.add_parser("dead-letters", parents=[common], help="list dead-lettered events")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--requeue", action="store_true", help="move them all back into the queue")
    return parser


def _fail(message: str) -> int:
    print(f"codex-sdk: error: {message}", file=sys.stderr)
    return EXIT_FAIL


def _creds_path(args: argparse.Namespace) -> Path:
    return args.config or credentials.default_path()


def _client(args: argparse.Namespace, creds: Credentials, **kwargs: Any) -> Client:
    return Client(creds.base_url, creds.key_id, creds.secret, queue_path=args.queue, **kwargs)


def cmd_login(args: argparse.Namespace) -> int:
    source = args.from_json
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        data = json.loads(text)
    except OSError as exc:
        return _fail(f"cannot read {source}: {exc.strerror or exc}")
    except ValueError as exc:
        return _fail(f"{source} is not valid JSON: {exc}")
    creds = credentials.from_provision(data, device=args.device, base_url=args.base_url)
    path = _creds_path(args)
    credentials.save(path, creds)
    print(f"Logged in: {creds.describe()}")
    print(f"Credentials saved to {path} (mode 0600)")
    return EXIT_OK


def _event_status(args: argparse.Namespace, client: Client) -> int:
    try:
        fate = client.lookup(args.event)
    except (ServerError, TransportError) as exc:
        return _fail(f"lookup failed: {exc}")
    finally:
        client.close(flush=False)
    if fate is None:
        if args.json:
            print(json.dumps({"idempotency_key": args.event, "status": "not_found"}))
        return _fail(f"the server has no event {args.event!r} for this key's tenant")
    print(json.dumps(fate.as_dict()) if args.json else fate.describe())
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    creds = credentials.load(_creds_path(args))
    client = _client(args, creds)
    if args.event is not None:
        return _event_status(args, client)
    try:
        client.refresh_config(force=True)
        st = client.status()
    finally:
        client.close(flush=False)
    if args.json:
        print(json.dumps({"key_id": creds.key_id, "base_url": creds.base_url, **st.as_dict()}))
    else:
        cfg = st.config
        print(f"key:         {creds.describe()}")
        print(f"queue:       {st.queue_depth} queued ({st.in_flight} in flight)")
        print(f"dead:        {st.dead_letters} dead-lettered")
        last = f"{st.last_sync_at} {st.last_sync_outcome}" if st.last_sync_at else "never"
        if st.last_sync_error:
            last += f" ({st.last_sync_error})"
        print(f"last sync:   {last}")
        origin = st.config_source + (
            f"; fetch failed: {st.config_error}" if st.config_error else ""
        )
        print(
            f"config:      syncEnabled={str(cfg.sync_enabled).lower()} "
            f"minIntervalSec={cfg.min_interval_sec:g} retryCap={cfg.retry_cap} ({origin})"
        )
    return EXIT_FAIL if st.config_error else EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    creds = credentials.load(_creds_path(args))
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        return _fail(f"--payload is not valid JSON: {exc}")
    client = _client(args, creds)
    try:
        key = client.track(
            args.type,
            payload,
            idempotency_key=args.idempotency_key,
            occurred_at=args.occurred_at,
            source=args.source,
        )
        result = client.flush(timeout=args.timeout, force=args.force)
        status = result.statuses.get(key)
        # Only trust a dead letter produced by this flush, not an older one for the key.
        dead = client.dead_letter(key) if status is not None else None
    finally:
        client.close(flush=False)
    if status in ("accepted", "duplicate"):
        note = " (already delivered earlier)" if status == "duplicate" else ""
        print(f"{status}: event {key} ({args.type}){note}")
        return EXIT_OK
    if dead is not None:
        print(f"{dead.status}: event {key} dead-lettered: {dead.error_code}: {dead.error_message}")
        return EXIT_FAIL
    why = (
        "sync is disabled by server config (use --force)"
        if result.outcome == "disabled"
        else (f"{result.outcome}: {result.error}" if result.error else result.outcome)
    )
    print(f"queued: event {key} not delivered yet ({why}); it stays queued for the next sync")
    return EXIT_QUEUED


def cmd_run(args: argparse.Namespace) -> int:
    creds = credentials.load(_creds_path(args))
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    client = _client(args, creds, config_refresh_sec=args.config_refresh)
    log.info("running: %s, queue %s (Ctrl-C to stop)", creds.describe(), client.queue_path)
    client.start()
    try:
        while not done.wait(args.heartbeat or 3600):
            if args.heartbeat:
                key = client.track("sdk.heartbeat", {"queue_depth": client.status().queue_depth})
                log.info("tracked heartbeat %s", key)
    finally:
        log.info("stopping: final flush (up to 5s)")
        client.close(timeout=5.0)
    return EXIT_OK


def cmd_dead_letters(args: argparse.Namespace) -> int:
    creds = credentials.load(_creds_path(args))
    client = _client(args, creds)
    try:
        letters = client.dead_letters(args.limit)
        moved = client.requeue_dead_letters() if args.requeue else None
    finally:
        client.close(flush=False)
    if args.json:
        print(json.dumps([vars(d) for d in letters]))
    else:
        for d in letters:
            print(
                f"{d.idempotency_key}  {d.status}  {d.error_code}: {d.error_message}  "
                f"({d.event.get('type')})"
            )
        if not letters:
            print("no dead letters")
    if moved is not None:
        print(f"requeued {moved} events", file=sys.stderr)
    return EXIT_OK


COMMANDS = {
    "login": cmd_login,
    "status": cmd_status,
    "send": cmd_send,
    "run": cmd_run,
    "dead-letters": cmd_dead_letters,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `run` is the operator's live view, so it logs every sync; one-shot commands stay quiet.
    quiet = logging.INFO if args.command == "run" else logging.WARNING
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else quiet,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return COMMANDS[args.command](args)
    except CredentialsError as exc:
        return _fail(str(exc))
    except ValueError as exc:  # invalid event input, bad URL...
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
