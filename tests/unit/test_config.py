"""Settings from the environment: numbers that make no sense are refused by name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nxs.config import Settings


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("NXS_RESERVATION_TTL_SECONDS", "0"),  # would release every live hold
        ("NXS_RESERVATION_TTL_SECONDS", "-5"),
        ("NXS_REFRESH_SECONDS", "soon"),
        ("NXS_RECONCILE_MAX_CHECKS", "nan"),
        ("NXS_REALTIME_IDLE_SECONDS", "inf"),
    ],
)
def test_a_nonsense_number_is_refused_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: raw})


def test_sensible_numbers_are_read_and_zero_means_now_where_it_can() -> None:
    settings = Settings.from_env(
        {"NXS_RESERVATION_TTL_SECONDS": "90", "NXS_RECONCILE_AFTER_SECONDS": "0"}
    )
    assert (settings.reservation_ttl_seconds, settings.reconcile_after_seconds) == (90.0, 0.0)


def test_serve_refuses_to_start_with_a_bad_setting() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nxs", "serve", "--port", "1"],
        env={"NXS_RESERVATION_TTL_SECONDS": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "NXS_RESERVATION_TTL_SECONDS must be a number above 0" in done.stderr
    assert "Traceback" not in done.stderr
