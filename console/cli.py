"""`mazkira`: serve the console, run the worker, migrate, and set up businesses and people."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from console.base.config import ConfigError, Settings
from console.base.db import Database
from console.base.errors import ConsoleError
from console.base.migrate import upgrade
from console.people import accounts
from console.people.audit import Actor

SWITCH_INTERVAL = 0.001  # seconds; see `serve`


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.run(settings, args) or 0)
    except (ConfigError, ConsoleError) as error:
        print(f"mazkira: {getattr(error, 'message', error)}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mazkira", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the console (asgi:app under uvicorn)")
    _add_listen(serve)
    serve.set_defaults(run=run_serve)

    demo = commands.add_parser("demo", help="seed a demo agency on an empty database, then serve")
    _add_listen(demo)
    demo.add_argument(
        "--phone",
        action="store_true",
        help="with Kamailio, rtpengine and baresip installed: a private SIP server for the"
        " console's phone, and a caller ringing a demo business every --call-every seconds",
    )
    demo.add_argument("--call-every", type=float, default=30.0, metavar="SECONDS")
    demo.add_argument("--call-length", type=float, default=25.0, metavar="SECONDS")
    demo.set_defaults(run=run_demo)

    check = commands.add_parser(
        "check", help="say in plain words what in the settings is missing or wrong"
    )
    check.set_defaults(run=run_check)

    saved = commands.add_parser(
        "backup", help="copy the whole database to FILE, consistent, while the console runs"
    )
    saved.add_argument("file", metavar="FILE")
    saved.set_defaults(run=run_backup)

    restored = commands.add_parser(
        "restore", help="put a backup FILE in place of what the database holds now"
    )
    restored.add_argument("file", metavar="FILE")
    restored.set_defaults(run=run_restore)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=lambda s, a: _with_db(s, upgrade))

    worker = commands.add_parser("worker", help="run background jobs from Redis (arq)")
    worker.set_defaults(run=run_worker)

    business = commands.add_parser(
        "create-business", help="add a business; prints its id and intake key"
    )
    business.add_argument("--slug", required=True)
    business.add_argument("--name", required=True)
    business.add_argument("--timezone", default="Asia/Jerusalem")
    business.add_argument("--locale", default="he", choices=["he", "en"])
    business.set_defaults(run=run_create_business)

    user = commands.add_parser("create-user", help="add an admin, secretary or owner")
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--role", required=True, choices=["admin", "secretary", "owner"])
    user.add_argument("--name", default="")
    user.add_argument("--locale", default="he", choices=["he", "en"])
    user.add_argument(
        "--business",
        action="append",
        default=[],
        metavar="SLUG",
        help="a business the secretary serves or the owner owns (repeatable)",
    )
    user.set_defaults(run=run_create_user)

    sla_cmd = commands.add_parser(
        "set-sla", help="set a business's first-response promise (in its covered minutes)"
    )
    sla_cmd.add_argument("--business", required=True, metavar="SLUG")
    sla_cmd.add_argument("--channel", default="", help="phone, whatsapp, sms, email, web, walk-in")
    sla_cmd.add_argument("--priority", default="", help="low, normal, high, urgent")
    sla_cmd.add_argument("--minutes", type=int, required=True)
    sla_cmd.add_argument("--warn", default="50,80", help="warning thresholds in percent")
    sla_cmd.add_argument("--notify-owner", action="store_true")
    sla_cmd.set_defaults(run=run_set_sla)

    key = commands.add_parser(
        "intake-key", help="print (or --rotate) a business's web-form intake key"
    )
    key.add_argument("--business", required=True, metavar="SLUG")
    key.add_argument("--rotate", action="store_true")
    key.set_defaults(run=run_intake_key)

    line = commands.add_parser(
        "add-line", help="give a business a phone number, WhatsApp number or e-mail address"
    )
    line.add_argument("--business", required=True, metavar="SLUG")
    line.add_argument("--channel", required=True, choices=["phone", "sms", "whatsapp", "email"])
    line.add_argument(
        "--address",
        required=True,
        help="a phone number in any format, a WhatsApp phone_number_id, or an e-mail address",
    )
    line.add_argument("--label", default="")
    line.set_defaults(run=run_add_line)

    token = commands.add_parser(
        "create-token", help="make a personal API token for a user; prints it (shown only once)"
    )
    token.add_argument("--email", required=True)
    token.add_argument("--name", default="command line", help="what the token is for")
    token.set_defaults(run=run_create_token)

    second = commands.add_parser(
        "reset-two-factor",
        help="turn off someone's two-factor sign-in (a lost phone and lost recovery codes)",
    )
    second.add_argument("--email", required=True)
    second.set_defaults(run=run_reset_two_factor)

    simulate = commands.add_parser(
        "simulate",
        help="send realistic leads to a running console through its signed intake endpoints",
    )
    simulate.add_argument("--rate", default="0.2", help="leads a second (default 0.2)")
    simulate.add_argument("--minutes", default="10", help="how long (default 10; 0: until Ctrl-C)")
    simulate.add_argument("--url", default="http://127.0.0.1:8000", help="the console's address")
    simulate.add_argument("--seed", default=None, help="a whole number, to repeat a run's leads")
    simulate.add_argument(
        "--business", action="append", default=[], metavar="SLUG", help="only these (repeatable)"
    )
    simulate.set_defaults(run=run_simulate)

    imports = commands.add_parser(
        "import-contacts",
        help="import a business's customers from a CSV or XLSX file (all accepted rows or none)",
    )
    imports.add_argument("--business", required=True, metavar="SLUG")
    imports.add_argument("file", metavar="FILE")
    imports.add_argument(
        "--mapping",
        default="",
        help="field=column pairs, e.g. name=שם,phone=טלפון (default: guessed from the headers)",
    )
    imports.add_argument(
        "--merge", action="store_true", help="fill known customers' missing fields (else skip)"
    )
    imports.set_defaults(run=run_import_contacts)
    return parser


def _add_listen(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", default="127.0.0.1")
    command.add_argument("--port", type=int, default=8000)


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        db = Database(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.base import backups

    try:
        done = backups.backup(settings.database_url, Path(args.file))
    except backups.BackupError as error:
        print(f"mazkira backup: {error}", file=sys.stderr)
        return 1
    print(f"{done.kind} backup written to {done.path} ({done.size:,} bytes)")
    print("Keep SECRET_KEY (or the .secret file beside a SQLite database) with it: sessions,")
    print("signed links and two-factor secrets need it after a restore.")
    return 0


def run_restore(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.base import backups

    try:
        done = backups.restore(settings.database_url, Path(args.file))
    except backups.BackupError as error:
        print(f"mazkira restore: {error}", file=sys.stderr)
        return 1
    print(f"{done.kind} backup {done.path} restored; run `mazkira migrate` if it is older")
    return 0


def run_check(settings: Settings, args: argparse.Namespace) -> int:
    from console.base import checkup

    found = asyncio.run(checkup.run(settings))
    print(found.report())
    return 1 if found.count(checkup.PROBLEM) else 0


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    import logging

    from console.base import checkup, logs

    logs.configure(settings.log_format)  # the check's lines as the server's (JSON or text)
    log = logging.getLogger("mazkira.check")
    found = asyncio.run(checkup.run(settings))
    for finding in found.findings:
        if finding.level == checkup.PROBLEM:
            log.error("%s: %s", finding.part, finding.text)
    log.info("%s (`mazkira check` says more)", found.summary())
    if found.fatal:
        log.error("not starting until that is fixed")
        return 1
    serve(
        "asgi:app",
        host=args.host,
        port=args.port,
        header_timeout=settings.header_timeout_seconds,
        log_format=settings.log_format,
    )
    return 0


def serve(
    app: str, *, host: str, port: int, header_timeout: int = 20, log_format: str = "text"
) -> None:
    """uvicorn as `mazkira serve` runs it (`bench.intake` serves its ceiling app the same way)."""
    import uvicorn

    from asgi import header_deadline
    from console.base import logs

    # SQLite's driver runs each statement in a thread of its own, whose answer then waits for
    # the event loop's thread to let go of the interpreter lock, up to the whole switch interval
    # (5 ms by default): a group of arrivals makes such a hand-off per statement, and a short
    # interval keeps it from waiting out each. The same setting for the ceiling, which has no
    # threads.
    sys.setswitchinterval(SWITCH_INTERVAL)
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=False,  # X-Forwarded-For is judged by TRUSTED_PROXIES in the app
        # uvicorn closes a connection idle between requests (timeout_keep_alive) but waits
        # forever for one that opened, or began a request, and never finished its head
        http=header_deadline(header_timeout),
        timeout_graceful_shutdown=10,
        ws_max_size=65_536,  # a console only ever sends small hellos
        # A fragment goes to every console of its business, and compressing it once per socket
        # costs CPU for every console, to save little on rows of a few KB it gets a few a minute.
        ws_per_message_deflate=False,
        log_level="info",
        log_config=logs.config(log_format),  # LOG_FORMAT: text, or JSON lines
    )


def run_demo(settings: Settings, args: argparse.Namespace) -> int:
    from console.demo.demo import LINES, MAILBOX_DOMAIN, seed_if_empty

    async def seed(db: Database) -> list[tuple[str, str, str]] | None:
        await upgrade(db)
        async with db.transaction() as session:
            return await seed_if_empty(session)

    logins = _with_db(settings, seed)
    if logins:
        print("Demo agency created. Sign in with any of these (password for all: see below):")
        for role, email, password in logins:
            print(f"  {role:<10} {email:<32} {password}")
        print("The businesses' lines (phone and SMS, WhatsApp phone_number_id, e-mail):")
        for slug, (number, whatsapp) in LINES.items():
            print(f"  {slug:<16} {number}  {whatsapp}  {slug}@{MAILBOX_DOMAIN}")
    else:
        print("The database holds data already; serving it as it is.")
    url = f"http://{args.host}:{args.port}"
    print(f"Open {url}/")
    # The app is built from the environment (asgi:app): in demo mode a channel with no provider
    # delivers to the outbox page instead of failing each message.
    os.environ["DEMO_MODE"] = "true"
    print(f"Messages it would send by e-mail, SMS and WhatsApp: {url}/demo/outbox (as the admin)")
    print(f"For leads to arrive, run beside it (same DATABASE_URL): mazkira simulate --url {url}")
    sys.stdout.flush()
    if not args.phone:
        return run_serve(settings, args)
    return _serve_with_demo_phone(settings, args, [number for number, _ in LINES.values()])


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve_with_demo_phone(settings: Settings, args: argparse.Namespace, lines: list[str]) -> int:
    """`mazkira demo --phone`: private Kamailio and rtpengine (deploy/sip's configuration, on
    free ports) for the console served here, and a demo caller; without them, serve as usual."""
    import os
    import secrets
    import shutil
    import signal
    import tempfile
    from pathlib import Path

    from console.channels.lines import line_address
    from console.demo import sip_stack

    try:
        sip_stack.installed()
    except sip_stack.NotInstalled as error:
        print(f"No phone in this demo: {error}; see deploy/sip/README.md. Serving without it.")
        sys.stdout.flush()
        return run_serve(settings, args)
    work = Path(tempfile.mkdtemp(prefix="mazkira-demo-phone-"))
    secret = secrets.token_urlsafe(24)
    wildcard = args.host in ("0.0.0.0", "::", "")  # noqa: S104 (recognised, not bound)
    host = "127.0.0.1" if wildcard else args.host
    stack = sip_stack.SipStack(work, mazkira_url=f"http://{host}:{args.port}", secret=secret)
    calls: sip_stack.DemoCalls | None = None
    try:
        stack.start()
        # asgi:app reads its settings from the environment
        os.environ.update(SIP_SECRET=secret, SIP_WS_URL=stack.ws_url, SIP_DOMAIN=stack.domain)
        numbers = [line_address("phone", number) for number in lines]
        calls = sip_stack.DemoCalls(
            stack, work, numbers, every=args.call_every, length=args.call_length
        )
        calls.start()
        print(
            f"Phone: Kamailio at sip:127.0.0.1:{stack.sip_port} (WebSocket {stack.ws_url}),"
            f" rtpengine beside it; a demo caller rings {', '.join(numbers)} in turn every"
            f" {args.call_every:g} s. Sign in as a secretary to answer in the console."
        )
        sys.stdout.flush()
        # uvicorn hands SIGTERM and SIGINT back once it has shut down: as exceptions here, so
        # the SIP server and the caller stop with the console (they run in sessions of their own)
        signal.signal(signal.SIGTERM, _exit_quietly)
        return run_serve(settings, args)
    except KeyboardInterrupt:
        return 0
    finally:
        if calls is not None:
            calls.stop()
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    from arq.worker import run_worker as arq_run_worker
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from console.base import logs
    from workers.settings import worker_settings

    # arq's line per job, with the time, as `mazkira serve` logs its requests.
    logs.configure(settings.log_format)
    try:
        arq_run_worker(worker_settings(settings))
    except (RedisConnectionError, RedisTimeoutError) as error:
        # Short outages are waited out (workers/settings.py); past that, exit for the supervisor
        # to start the worker again. Nothing is lost: the cron sweep finds what is due.
        print(f"mazkira worker: Redis is unreachable ({error}); exiting", file=sys.stderr)
        return 1
    return 0


def run_create_business(settings: Settings, args: argparse.Namespace) -> int:
    async def create(db: Database) -> tuple[str, str]:
        async with db.transaction() as session:
            business = await accounts.create_business(
                session, slug=args.slug, name=args.name, timezone=args.timezone, locale=args.locale
            )
            return str(business.id), business.intake_key

    business_id, key = _with_db(settings, create)
    print(f"business_id: {business_id}")
    print(f"intake_key: {key}")
    return 0


def run_create_user(settings: Settings, args: argparse.Namespace) -> int:
    async def create(db: Database) -> str:
        async with db.transaction() as session:
            user = await accounts.create_user(
                session,
                email=args.email,
                password=args.password,
                role=args.role,
                name=args.name,
                locale=args.locale,
                businesses=args.business,
            )
            return str(user.id)

    print(f"user_id: {_with_db(settings, create)}")
    return 0


def run_set_sla(settings: Settings, args: argparse.Namespace) -> int:
    from console.sla import sla

    try:
        warnings = [int(part) for part in args.warn.split(",") if part.strip()]
    except ValueError:
        raise ConfigError("--warn takes whole percents separated by commas, e.g. 50,80") from None

    async def apply(db: Database) -> None:
        async with db.transaction() as session:
            business = await accounts.business_by_slug(session, args.business)
            await sla.set_policy(
                session,
                Actor.command_line(datetime.now(UTC)),
                business,
                channel=args.channel,
                priority=args.priority,
                minutes=args.minutes,
                warnings=warnings,
                notify_owner=args.notify_owner,
            )

    _with_db(settings, apply)
    print("ok")
    return 0


def run_intake_key(settings: Settings, args: argparse.Namespace) -> int:
    async def key(db: Database) -> str:
        async with db.transaction() as session:
            business = await accounts.business_by_slug(session, args.business)
            if args.rotate:
                from console.channels.lines import rotate_key

                return await rotate_key(session, Actor.command_line(datetime.now(UTC)), business)
            return business.intake_key

    print(_with_db(settings, key))
    return 0


def run_create_token(settings: Settings, args: argparse.Namespace) -> int:
    from console.people import api_tokens

    async def create(db: Database) -> str:
        async with db.transaction() as session:
            made = await api_tokens.create_token_for_email(
                session, args.email, args.name, now=datetime.now(UTC)
            )
            return made.secret

    print(_with_db(settings, create))
    return 0


def run_reset_two_factor(settings: Settings, args: argparse.Namespace) -> int:
    from console.people import two_factor

    async def reset(db: Database) -> None:
        async with db.transaction() as session:
            actor = Actor.command_line(datetime.now(UTC))
            await two_factor.reset_for_email(session, actor, args.email)

    _with_db(settings, reset)
    print("ok: two-factor sign-in is off; she sets it up again at her next sign-in if required")
    return 0


def run_add_line(settings: Settings, args: argparse.Namespace) -> int:
    from console.channels.lines import add_line

    async def add(db: Database) -> str:
        async with db.transaction() as session:
            business = await accounts.business_by_slug(session, args.business)
            line = await add_line(
                session,
                business,
                args.channel,
                args.address,
                args.label,
                actor=Actor.command_line(datetime.now(UTC)),
            )
            return f"{line.channel} {line.address}"

    print(_with_db(settings, add))
    return 0


def run_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from console.demo.simulate import Plan, simulate

    plan = Plan.parse(
        url=args.url,
        rate=args.rate,
        minutes=args.minutes,
        seed=args.seed,
        businesses=args.business,
    )
    return simulate(settings, plan, out=lambda line: print(line, flush=True))


def run_import_contacts(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.contacts import contact_import

    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    sheet = contact_import.read_sheet(path.name, content)
    if args.mapping:
        mapping = contact_import.mapping_from_option(args.mapping, sheet.headers)
    else:
        mapping = contact_import.parse_mapping(
            {k: str(v) for k, v in contact_import.guess_mapping(sheet.headers).items()},
            sheet.headers,
        )

    def progress(done: int, total: int) -> None:
        if done == total or done % 100 == 0:
            filled = 30 * done // max(total, 1)
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r[{bar}] {done}/{total}", end="\n" if done == total else "", file=sys.stderr)

    async def run(db: Database) -> contact_import.ImportReport:
        async with db.transaction() as session:
            business = await accounts.business_by_slug(session, args.business)
            report = await contact_import.import_contacts(
                session,
                business,
                sheet,
                mapping,
                merge=args.merge,
                progress=progress,
                now=datetime.now(UTC),
            )
            cli = Actor.command_line(datetime.now(UTC))
            await contact_import.audit_import(
                session,
                business,
                report,
                path.name,
                now=cli.now,
                actor_email=cli.email,
                address=cli.address,
            )
            return report

    report = _with_db(settings, run)
    print(
        f"created: {report.created}, merged: {report.merged}, "
        f"skipped: {len(report.skipped)}, rejected: {len(report.rejected)}"
    )
    if report.rejected or report.skipped:
        sys.stdout.write(report.text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
