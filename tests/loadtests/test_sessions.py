"""Sessions in the load suite are kept as real users keep them: a citizen logs in when it needs a
session and reuses its token, so logins are a small share of the mix (a real locust run against
the real hall), against the former suite's login as a task; the session length's draw (unit)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from clusters.apps.hall.devserver import LocalHall
from govcloud.spec import load_spec
from govcloud.spec.load import LAB_SPEC
from loadtests.run import RunOptions, run


@pytest.mark.unit
def test_a_session_serves_sixty_authenticated_requests_on_average() -> None:
    from loadtests.personas import SESSION_REQUESTS, session_length

    rnd = random.Random(15)
    draws = [session_length(rnd) for _ in range(20_000)]
    assert min(draws) >= 1
    assert abs(sum(draws) / len(draws) - SESSION_REQUESTS) < 0.05 * SESSION_REQUESTS


@pytest.mark.unit
def test_an_unknown_session_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadtests.personas import SESSIONS_ENV, sessions_mode

    monkeypatch.setenv(SESSIONS_ENV, "per-task")
    assert sessions_mode() == "per-task"
    monkeypatch.setenv(SESSIONS_ENV, "")
    assert sessions_mode() == "reuse"
    monkeypatch.setenv(SESSIONS_ENV, "always")
    with pytest.raises(ValueError, match=SESSIONS_ENV):
        sessions_mode()


def _logins(report: Path) -> tuple[int, int]:
    """(logins and registrations, all requests) of a run, from locust's statistics."""
    logins = total = 0
    with open(report / "stats_stats.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                total = int(row["Request Count"])
            elif row["Name"].endswith(("POST /api/login", "POST /login", "POST /api/accounts")):
                logins += int(row["Request Count"])
    return logins, total


@pytest.mark.integration
@pytest.mark.slow
def test_citizens_reuse_their_sessions_and_logins_are_a_small_share(
    no_faults: LocalHall, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadtests.personas import SESSIONS_ENV

    shares = {}
    for mode in ("reuse", "per-task"):
        monkeypatch.setenv(SESSIONS_ENV, mode)  # the locust process inherits it
        report = tmp_path / mode
        result = run(
            RunOptions(
                spec=load_spec(LAB_SPEC),
                profile="soak",
                target=no_faults.url,
                admin_token=no_faults.admin_token,
                users=16,
                duration="20s",
                think="0.1-0.3",
                sites_per_level=2,
                report_dir=report,
                echo=lambda _t: None,
                locust_output=False,
            )
        )
        assert result["failures"] == 0, result["breaches"]
        logins, total = _logins(report)
        assert total > 500, total
        shares[mode] = logins / total
    # the former suite logs in as one citizen task in seventeen: about 3-4 % of the whole mix;
    # sessions kept for ~60 authenticated requests make it well under 1.5 %
    assert shares["per-task"] > 0.02, shares
    assert shares["reuse"] < 0.015, shares
    assert shares["reuse"] < shares["per-task"] / 3, shares
