"""`nxs config`: the settings NXS would run with here — every `NXS_*` variable with its
effective value (the environment's, else the default), secrets masked, passwords taken
out of URLs. A bad value is the one-line error `nxs serve` would give.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from typing import Any

from nxs.config import SECRETS, Settings, env_fields, variable
from nxs.store.database import redact

URLS = frozenset({"database_url", "redis_url", "upstream_url", "public_url"})
MASK = "********"


def add_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print the effective NXS_* settings (secrets masked)",
        description="Print every NXS_* setting as NXS would run with it here: the "
        "environment's value, else the default; secrets masked.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
    except ValueError as error:
        raise SystemExit(f"nxs config: {error}") from None
    shown = effective(settings)
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        width = max(len(name) for name in shown)
        for name, value in shown.items():
            print(f"{name:<{width}}  {'' if value is None else _text(value)}")
    return 0


def effective(settings: Settings) -> dict[str, Any]:
    """`NXS_NAME` → what it is set to, safe to show."""
    known = {f.name for f in fields(Settings)}
    return {
        variable(name): _safe(name, getattr(settings, name))
        for name in env_fields()
        if name in known
    }


def _safe(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in SECRETS:
        return MASK
    if name in URLS:
        return redact(str(value))
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bool | int | float):
        return value
    return str(value)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
