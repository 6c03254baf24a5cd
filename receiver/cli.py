"""Flask commands for a person trying or running the service.

- `flask --app receiver preview NOTICE`: render a notice with sample data to files.
- `flask --app receiver send-test-event TYPE`: post a realistic, signed sample event to a
  running service (`make run`), as 1099Policy or the platform would, and print the answer.

Registered as Flask CLI plugins (pyproject `flask.commands`), so they run without the app's
start-up checks: previewing an email needs no Redis, sending an event needs only the secrets.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import textwrap
from pathlib import Path

import click
import requests

from .clock import system_clock
from .config import CONSOLE_ROLES, Config, load_config
from .console.users import user_line
from .delivery.emails import EMAIL_TEMPLATES, NOTICES, EmailRenderer
from .delivery.samples import SAMPLE_CONTEXTS
from .errors import ConfigError, PayloadError
from .ingest.envelopes import KNOWN_TYPES, to_unix
from .ingest.examples import DEFAULT_CONTRACTOR, example, source_of, with_overrides
from .ingest.signing import standard_webhooks_headers, tv1_header
from .pipeline.erasure import forget_contractor
from .pipeline.processing import replay
from .pipeline.reconcile import ReconcileFailed, reconcile
from .pipeline.retention import purge
from .pipeline.runtime import Runtime, build
from .store import keys

# Written by `make run`: its development secrets, and the Redis and port it runs on now.
DEV_SECRETS = Path("var") / "dev-secrets.env"
RUN_ENV = Path("var") / "run.env"
LOCAL_FILES = (DEV_SECRETS, RUN_ENV)
CHECKOUT_MARK = Path("scripts") / "run_local.py"  # this folder is a clone, where `make run` runs
ALL_TYPES = sorted(t for types in KNOWN_TYPES.values() for t in types)
NO_RUN = (
    "var/run.env is missing: no `make run` is running in this folder (it writes the file while "
    "it runs, with the Redis it started). Start `make run` in another terminal, or set "
    "REDIS_URL to the Redis to use."
)


@click.command("preview")
@click.argument("notice", type=click.Choice(NOTICES))
@click.option(
    "--out",
    "out_dir",
    default="var/preview",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for NOTICE.html, NOTICE.txt and NOTICE.subject.txt.",
)
def preview(notice: str, out_dir: Path) -> None:
    """Render NOTICE with sample data to HTML and text files."""
    renderer = EmailRenderer(
        EMAIL_TEMPLATES,
        brand_name=os.environ.get("BRAND_NAME", Config.BRAND_NAME),
        support_email=os.environ.get("SUPPORT_EMAIL", Config.SUPPORT_EMAIL),
    )
    email = renderer.render(notice, copy.deepcopy(SAMPLE_CONTEXTS[notice]))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "html": out_dir / f"{notice}.html",
        "text": out_dir / f"{notice}.txt",
        "subject": out_dir / f"{notice}.subject.txt",
    }
    paths["html"].write_text(email.html, encoding="utf-8")
    paths["text"].write_text(email.text, encoding="utf-8")
    paths["subject"].write_text(email.subject + "\n", encoding="utf-8")
    click.echo(f"Subject: {email.subject}")
    for kind, path in paths.items():
        click.echo(f"{kind:8} {path}")


def _environ() -> dict[str, str]:
    """The environment, over what a running `make run` wrote down (LOCAL_FILES), so these
    commands work in a second terminal beside it without exporting anything."""
    found: dict[str, str] = {}
    for path in LOCAL_FILES:
        if path.exists():
            for line in path.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    found[key] = value
    return {**found, **os.environ}


def local_environ() -> dict[str, str]:
    """`_environ()`, refusing to fall back on the default Redis (redis://127.0.0.1:6379, some
    other Redis) in a clone where `make run` is not running: UsageError saying so."""
    environ = _environ()
    if "REDIS_URL" not in environ and CHECKOUT_MARK.exists() and not RUN_ENV.exists():
        raise click.UsageError(NO_RUN)
    return environ


def _runtime() -> Runtime:
    """The worker-side runtime, for commands that act on stored state; a bad setting is a
    usage error naming it."""
    try:
        return build(load_config(environ=local_environ()))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _secret(name: str) -> str:
    """The first of a comma-separated secret setting."""
    first = _environ().get(name, "").split(",")[0].strip()
    if not first:
        raise click.UsageError(f"{name} is not set (and no var/dev-secrets.env names it)")
    return first


def _types_help() -> str:
    """The types send-test-event knows, by sender, for its --help."""
    lines = ["\b", "TYPE is one of:"]
    for source in sorted(KNOWN_TYPES):
        listed = ", ".join(sorted(KNOWN_TYPES[source]))
        lines += textwrap.wrap(listed, 76, initial_indent=f"  {source}: ", subsequent_indent="    ")
    return "\n".join(lines)


@click.command("send-test-event", epilog=_types_help())
@click.argument("event_type", metavar="TYPE", type=click.Choice(ALL_TYPES))
@click.option(
    "--url",
    default=lambda: f"http://127.0.0.1:{_environ().get('PORT', '8000')}",
    show_default="http://127.0.0.1:$PORT (8000)",
    help="Base URL of the running service.",
)
@click.option(
    "--contractor",
    default=DEFAULT_CONTRACTOR,
    show_default=True,
    help="Contractor id. Another id than the default is a person of its own: a name and the "
    "address <id>@example.com.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a field of the event's data (dotted keys; JSON values). Repeatable.",
)
@click.option("--print-body", is_flag=True, help="Print the event that is sent.")
def send_test_event(
    event_type: str, url: str, contractor: str, overrides: tuple[str, ...], print_body: bool
) -> None:
    """Post a signed sample TYPE event, as its sender (1099Policy or the platform) would."""
    now = int(system_clock())
    try:
        envelope = with_overrides(example(event_type, contractor, now), list(overrides))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    body = json.dumps(envelope)
    source = source_of(event_type)
    if source == "1099policy":
        headers = {
            "Ten99Policy-Signature": tv1_header(
                _secret("TEN99POLICY_WEBHOOK_SECRETS"), body.encode(), now
            )
        }
    else:
        msg_id = f"msg_{secrets.token_hex(12)}"
        headers = standard_webhooks_headers(_secret("PLATFORM_WEBHOOK_SECRETS"), msg_id, body, now)
    headers["content-type"] = "application/json"
    if print_body:
        click.echo(json.dumps(envelope, indent=2))
    target = f"{url.rstrip('/')}/webhooks/{source}"
    try:
        response = requests.post(target, data=body.encode(), headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise click.ClickException(f"could not reach {target}: {type(exc).__name__}") from None
    click.echo(f"{source} {event_type} -> {response.status_code} {response.text.strip()}")
    if not 200 <= response.status_code < 300:
        raise SystemExit(1)


def _stored_source(rt: Runtime, event_id: str) -> str:
    """The sender under which `event_id` is stored: platform ids (`webhook-id`) are `msg_…`,
    1099Policy's `ev_…`; whichever it is, the one that has it stored. Usage error when both
    have it (say --source) or neither (say so, naming both)."""
    found = [s for s in sorted(KNOWN_TYPES) if rt.redis.exists(keys.event(s, event_id))]
    if len(found) == 1:
        return found[0]
    if found:
        raise click.UsageError(
            f"{event_id} is stored from both {' and '.join(found)}: say which with --source"
        )
    raise click.UsageError(
        f"no event {event_id} is stored from {' or '.join(sorted(KNOWN_TYPES))} (or it is "
        "past EVENT_RETENTION_DAYS); the console's Events page finds events by id"
    )


@click.command("replay")
@click.argument("event_id")
@click.option(
    "--source",
    type=click.Choice(sorted(KNOWN_TYPES)),
    default=None,
    help="Who sent the event; default: the sender it is stored under (1099Policy's ids are "
    "ev_…, the platform's msg_…).",
)
def replay_command(event_id: str, source: str | None) -> None:
    """Process a stored event again. Safe: no email already sent goes out twice."""
    rt = _runtime()
    source = source or _stored_source(rt, event_id)
    outcome = replay(rt, source, event_id)
    messages = {
        "queued": "queued: a worker processes it again",
        "missing": "no such event is stored (or it is past EVENT_RETENTION_DAYS)",
        "processing": "a worker is processing it right now; try again shortly",
        "ignored": "its type has no handler; replaying it would do nothing",
    }
    click.echo(f"{source} {event_id}: {messages.get(outcome, outcome)}")
    if outcome != "queued":
        raise SystemExit(1)


@click.command("forget-contractor")
@click.argument("contractor_id")
@click.option("--yes", is_flag=True, help="Do it without asking (scripts).")
def forget_contractor_command(contractor_id: str, yes: bool) -> None:
    """Erase what is personal about CONTRACTOR_ID (an erasure request); it cannot be undone."""
    if not yes:
        click.confirm(
            f"Erase the contact, coverage, emails and event bodies of {contractor_id}?", abort=True
        )
    erased = forget_contractor(_runtime(), contractor_id)
    click.echo(
        f"{contractor_id}: erased contact entries {erased.contact}, coverage entries "
        f"{erased.coverage}, notice records {erased.notices}, event bodies {erased.events}"
    )


@click.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=1),
    required=True,
    help="Age in days (at least 1).",
)
@click.option("--yes", is_flag=True, help="Do it without asking (scripts).")
def purge_command(days: float, yes: bool) -> None:
    """Delete finished events and notice records older than --older-than days."""
    if not yes:
        click.confirm(
            f"Delete finished events and notice records older than {days:g} days?", abort=True
        )
    purged = purge(_runtime(), days * 86400)
    click.echo(f"purged {purged.events} events and {purged.notices} notice records")


@click.command("reconcile")
@click.option(
    "--since",
    default=None,
    help="Stop at events created before this time "
    "(Unix seconds or ISO 8601); default: at the newest event already stored.",
)
def reconcile_command(since: str | None) -> None:
    """Fetch 1099Policy events that never arrived by webhook and accept them."""
    try:
        start = to_unix(since, "--since")
    except PayloadError as exc:
        raise click.UsageError(str(exc)) from None
    rt = _runtime()
    try:
        done = reconcile(rt, start)
    except ReconcileFailed as exc:
        raise click.ClickException(
            f"1099Policy's events API failed ({exc}); nothing accepted"
        ) from None
    state = "complete" if done.complete else "partial: run it again"
    click.echo(
        f"{done.pages} pages, {done.listed} unknown events, {done.recovered} accepted ({state})"
    )


@click.command("console-user")
@click.argument("name")
@click.argument("role", type=click.Choice(CONSOLE_ROLES))
@click.password_option(help="Asked for on the terminal when not given (hidden, twice).")
def console_user_command(name: str, role: str, password: str) -> None:
    """Print the CONSOLE_USERS entry for user NAME with ROLE (viewer or operator)."""
    if not name or any(c in name for c in ":,") or name != name.strip():
        raise click.BadParameter("a name without colons, commas or outer spaces", param_hint="NAME")
    if len(password) < 12:
        raise click.BadParameter("at least 12 characters", param_hint="password")
    click.echo("Add this entry to CONSOLE_USERS (comma-separated entries):")
    click.echo(user_line(name, role, password))
