"""AltegioClient against the embedded sandbox (real HTTP on 127.0.0.1): ground-truth equality
under page caps, boundary repeats and faults; shared rate budget across processes; request
economy; typed errors; the secret canary."""

import logging
import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from pipelines.altegio import endpoints as ep
from pipelines.altegio.client import (
    AccessDenied,
    AltegioClient,
    AuthError,
    ClientSettings,
    Credentials,
    NotFound,
    RequestRefused,
    RetryPolicy,
)
from pipelines.altegio.sandbox import Faults, SandboxConfig, serve

START, END = date(2026, 1, 1), date(2026, 1, 3)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
BASE_CFG = SandboxConfig(
    seed=11,
    chains=2,
    locations_per_chain=2,
    start=START,
    end=END,
    transactions_per_day=40,
    memberships_per_day=4,
)
# Retries without seconds of sleep; the time budget and attempt cap are the production ones.
FAST_RETRY = RetryPolicy(backoff_base_s=0.01, backoff_max_s=0.05)
PAGED = ("membership_types", "memberships", "certificate_types", "transactions")


def settings(server: Any, tmp_path: Path, **kw: Any) -> ClientSettings:
    creds = server.credentials
    defaults: dict[str, Any] = {
        "base_url": server.base_url,
        "credentials": Credentials(partner_token=creds.partner_token, user_token=creds.user_token),
        "rate_limit": None,
        "budget_dir": tmp_path,
        "retry": FAST_RETRY,
    }
    defaults.update(kw)
    return ClientSettings(**defaults)


def key(records: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)


def window(dataset: Any, chain_id: int) -> tuple[datetime, datetime]:
    zone = ZoneInfo(dataset.chain_timezone(chain_id))
    first = datetime.combine(START, datetime.min.time(), zone)
    return first, datetime.combine(END, datetime.max.time().replace(microsecond=0), zone)


def extract_all(client: AltegioClient, dataset: Any) -> dict[str, list[dict[str, Any]]]:
    """Every endpoint of every chain, keyed "endpoint:chain[:day]"."""
    out: dict[str, list[dict[str, Any]]] = {}

    def put(name: str, pages: Iterator[Any]) -> None:
        out[name] = [r for page in pages for r in page.records]

    for chain in client.list_chains():
        c = chain.id
        put(f"membership_types:{c}", client.list_membership_types(c))
        put(f"certificate_types:{c}", client.list_certificate_types(c))
        put(f"notification_templates:{c}", client.list_notification_templates(c))
        put(f"card_types:{c}", client.list_card_types(c))
        put(f"promotions:{c}", client.list_promotions(chain))
        put(f"memberships:{c}", client.list_memberships(c, *window(dataset, c)))
        for day, pages in client.fetch_transaction_days(c, DAYS, workers=3):
            out[f"transactions:{c}:{day}"] = [r for page in pages for r in page.records]
    return out


def truth(dataset: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for c in dataset.chain_ids():
        out[f"membership_types:{c}"] = dataset.membership_types(c)
        out[f"certificate_types:{c}"] = dataset.certificate_types(c)
        out[f"notification_templates:{c}"] = dataset.notification_templates(c)
        out[f"card_types:{c}"] = dataset.card_types(c)
        out[f"promotions:{c}"] = dataset.promotions(c)
        out[f"memberships:{c}"] = dataset.memberships(c, *window(dataset, c))
        for day in DAYS:
            out[f"transactions:{c}:{day}"] = dataset.transactions(c, day, day)
    return out


def assert_same(
    got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]]
) -> None:
    assert sorted(got) == sorted(want)
    for name, records in want.items():
        ids = [r["id"] for r in got[name]]
        assert len(ids) == len(set(ids)), f"duplicates in {name}"
        assert key(got[name]) == key(records), name
    assert sum(len(v) for v in want.values()) > 100  # the run really covered data


# --------------------------------------------------------------------------- ground truth


CAP_CASES = {
    # page cap below the requested size (client asks 1000 / 100, server serves 7)
    "cap_below": ({}, Faults(page_size_cap=7)),
    # cap equal to the requested size
    "cap_equal": ({n: 20 for n in PAGED}, Faults(page_size_cap=20)),
    # cap above the requested size (server serves what is asked)
    "cap_above": ({n: 20 for n in PAGED}, Faults(page_size_cap=50)),
    # boundary repeats: page p > 1 starts with the last row of page p-1
    "overlap": ({}, Faults(page_size_cap=7, overlap_pages=True)),
    "overlap_no_cap": ({n: 5 for n in PAGED}, Faults(overlap_pages=True)),
    # the envelope quirks: array-wrapped memberships, numeric strings, extra fields
    "quirky_bodies": ({}, Faults(page_size_cap=9, wrap_memberships=True)),
}


@pytest.mark.parametrize("case", sorted(CAP_CASES))
def test_every_endpoint_yields_exactly_the_ground_truth(case: str, tmp_path: Path) -> None:
    page_sizes, faults = CAP_CASES[case]
    with serve(replace(BASE_CFG, faults=faults)) as server:
        want = truth(server.dataset)
        with AltegioClient(settings(server, tmp_path, page_sizes=page_sizes)) as client:
            assert_same(extract_all(client, server.dataset), want)


def test_rows_an_exact_multiple_of_the_page_size(tmp_path: Path) -> None:
    with serve(BASE_CFG) as probe:
        counts = {
            (c, d): probe.dataset.transaction_count(c, d)
            for c in probe.dataset.chain_ids()
            for d in DAYS
        }
        chain_id, day = max(counts, key=lambda k: counts[k])
        n = counts[(chain_id, day)]
    cap = next(s for s in (n // 4, n // 3, n // 2, n) if s and n % s == 0)
    faults = Faults(page_size_caps={"transactions": cap})
    with serve(replace(BASE_CFG, faults=faults)) as server:
        with AltegioClient(settings(server, tmp_path)) as client:
            got = [r for p in client.list_transactions(chain_id, day) for r in p.records]
        assert key(got) == key(server.dataset.transactions(chain_id, day, day))
        served = server.stats()["page_sizes"]["transactions"]
        assert served == {str(cap): n // cap, "0": 1}  # full pages, then one empty page


# --------------------------------------------------------------------------- faults


def test_faults_give_the_same_rows_as_a_clean_run(tmp_path: Path) -> None:
    with serve(BASE_CFG) as clean:
        want = truth(clean.dataset)
    faults = Faults(
        page_size_cap=11,
        error_every=9,
        error_burst=2,
        drop_every=7,
        truncate_every=13,
        error_statuses=(500, 502, 503, 504),
    )
    with serve(replace(BASE_CFG, faults=faults)) as server:
        with AltegioClient(settings(server, tmp_path)) as client:
            got = extract_all(client, server.dataset)
            stats = client.stats
        injected = server.stats()["faults"]
    assert_same(got, want)
    assert injected.get("error", 0) > 0 and injected.get("drop", 0) > 0
    assert injected.get("truncate", 0) > 0
    assert stats.server_errors_5xx > 0 and stats.network_errors > 0
    assert stats.retries >= stats.server_errors_5xx + stats.network_errors


def test_a_429_storm_gives_the_same_rows_and_cuts_the_rate(tmp_path: Path) -> None:
    cfg = replace(BASE_CFG, rate_limit=30.0, rate_limit_burst=1, rate_limit_retry_after=False)
    with serve(cfg) as server:
        chain_id = server.dataset.chain_ids()[0]
        with AltegioClient(
            settings(
                server,
                tmp_path,
                rate_limit=200.0,
                page_sizes={"transactions": 5},
            )
        ) as client:
            got = {
                day: [r for page in pages for r in page.records]
                for day, pages in client.fetch_transaction_days(chain_id, DAYS, workers=4)
            }
            assert client.stats.http_429 > 0
            rate = client.budget.current_rate()
            assert rate is not None and rate < 200.0
        for day in DAYS:
            assert key(got[day]) == key(server.dataset.transactions(chain_id, day, day))


def test_retry_after_from_the_sandbox_is_honoured(tmp_path: Path) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)  # real: the sandbox bucket must refill (about 1 s in all)

    cfg = replace(BASE_CFG, rate_limit=1.0, rate_limit_burst=1)
    with (
        serve(cfg) as server,
        AltegioClient(
            settings(server, tmp_path, sleep=sleep, retry=replace(FAST_RETRY, max_attempts=3))
        ) as client,
    ):
        client.list_chains()
        client.list_chains()  # immediately: 429 with Retry-After: 1, then success
        assert client.stats.http_429 >= 1
    assert any(s >= 1.0 for s in sleeps)


# --------------------------------------------------------------------------- rate budget


def _rate_worker(
    base_url: str,
    creds: tuple[str, str],
    budget_dir: str,
    rate: float,
    chain_id: int,
    days: list[date],
    barrier: Any,
    results: Any,
) -> None:
    client = AltegioClient(
        ClientSettings(
            base_url=base_url,
            credentials=Credentials(partner_token=creds[0], user_token=creds[1]),
            rate_limit=rate,
            budget_dir=Path(budget_dir),
            page_sizes={"transactions": 5},
            retry=RetryPolicy(max_attempts=2),
        )
    )
    rows = 0
    barrier.wait()
    started = time.time()
    with client:
        for _, pages in client.fetch_transaction_days(chain_id, days, workers=2):
            rows += sum(len(page.records) for page in pages)
    results.put((started, time.time(), client.stats.requests, client.stats.http_429, rows))


def test_separate_processes_share_the_budget_without_429s(tmp_path: Path) -> None:
    rate = 8.0
    processes = 3
    cfg = replace(
        BASE_CFG, chains=processes, rate_limit=rate, rate_limit_burst=3, transactions_per_day=25
    )
    ctx = mp.get_context("spawn")
    with serve(cfg) as server:
        server.reset_stats()
        creds = (server.credentials.partner_token, server.credentials.user_token)
        barrier = ctx.Barrier(processes)
        results = ctx.Queue()
        procs = [
            ctx.Process(
                target=_rate_worker,
                args=(
                    server.base_url,
                    creds,
                    str(tmp_path),
                    rate,
                    chain_id,
                    DAYS,
                    barrier,
                    results,
                ),
            )
            for chain_id in server.dataset.chain_ids()[:processes]
        ]
        for p in procs:
            p.start()
        out = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        server_stats = server.stats()
    start = min(o[0] for o in out)
    end = max(o[1] for o in out)
    requests = sum(o[2] for o in out)
    achieved = requests / (end - start)
    logging.getLogger(__name__).info(
        "shared budget: %d requests in %.2fs = %.2f req/s (R=%.1f, %.0f%%)",
        requests,
        end - start,
        achieved,
        rate,
        100 * achieved / rate,
    )
    assert sum(o[3] for o in out) == 0
    assert server_stats["faults"].get("rate_limited", 0) == 0
    assert requests >= 45  # enough queued work for the ratio to mean something
    assert achieved <= rate * 1.05
    assert achieved >= 0.9 * rate, f"achieved {achieved:.2f} req/s of {rate}"


# --------------------------------------------------------------------------- economy


def test_requests_stay_within_5_percent_of_the_served_minimum(tmp_path: Path) -> None:
    caps = {"transactions": 10, "memberships": 3, "membership_types": 4, "certificate_types": 100}
    with serve(replace(BASE_CFG, faults=Faults(page_size_caps=caps))) as server:
        want = truth(server.dataset)
        with AltegioClient(settings(server, tmp_path)) as client:
            got = extract_all(client, server.dataset)
        stats = server.stats()["requests"]
    assert_same(got, want)
    minimum = 1  # /groups
    for name, records in want.items():
        endpoint = name.split(":")[0]
        n = len(records)
        if endpoint in ("notification_templates", "card_types"):
            minimum += 1
        elif endpoint == "promotions":
            chain_id = int(name.split(":")[1])
            minimum += len(server.dataset.location_ids(chain_id)) + n
        elif endpoint in ("membership_types", "certificate_types"):  # real total: no probe
            minimum += max(1, -(-n // caps[endpoint]))
        else:  # no total: a short (or empty) page is the only proof of the end
            minimum += n // caps[endpoint] + 1
    made = sum(sum(by_status.values()) for by_status in stats.values())
    ratio = made / minimum
    logging.getLogger(__name__).info("economy: %d requests, minimum %d, %.3f", made, minimum, ratio)
    assert ratio <= 1.05, (made, minimum, stats)


# --------------------------------------------------------------------------- errors


def test_401_403_404_422_surface_as_typed_errors(tmp_path: Path) -> None:
    faults = Faults(forbidden_chain=1)
    with serve(replace(BASE_CFG, faults=faults, chains=3)) as server:
        bad = Credentials(partner_token=server.credentials.partner_token, user_token="wrong")
        with (
            AltegioClient(settings(server, tmp_path, credentials=bad)) as client,
            pytest.raises(AuthError) as auth,
        ):
            client.list_chains()
        assert auth.value.status == 401 and auth.value.message
        assert "ALTEGIO_USER_TOKEN" in str(auth.value)

        with AltegioClient(settings(server, tmp_path)) as client:
            chains = client.list_chains()
            results: dict[int, Any] = {}
            for chain in chains:
                try:
                    results[chain.id] = [
                        r for p in client.list_transactions(chain.id, START) for r in p.records
                    ]
                except AccessDenied as exc:
                    results[chain.id] = exc
            forbidden = results[chains[1].id]
            assert isinstance(forbidden, AccessDenied) and forbidden.status == 403
            assert forbidden.message and forbidden.chain_id == chains[1].id
            for other in (chains[0], chains[2]):
                assert key(results[other.id]) == key(
                    server.dataset.transactions(other.id, START, START)
                )

            session = client._session
            c = chains[0].id
            with pytest.raises(NotFound) as nf:
                session.call(
                    ep.ENDPOINTS["promotion"],
                    ep.ENDPOINTS["promotion"].format_path(chain_id=c, program_id=1),
                    chain_id=c,
                )
            assert nf.value.status == 404
            with pytest.raises(RequestRefused) as ve:
                session.call(
                    ep.ENDPOINTS["transactions"],
                    ep.ENDPOINTS["transactions"].format_path(chain_id=c),
                )
            assert ve.value.status == 422 and "created_after" in ve.value.errors
            assert ve.value.message
            with pytest.raises(RequestRefused) as mv:
                session.call(
                    ep.ENDPOINTS["memberships"], ep.ENDPOINTS["memberships"].format_path(chain_id=c)
                )
            assert mv.value.status == 400 and mv.value.message


def test_login_password_and_one_relogin_against_the_sandbox(tmp_path: Path) -> None:
    with serve(BASE_CFG) as server:
        cr = server.credentials
        creds = Credentials(
            partner_token=cr.partner_token, user_token="stale", login=cr.login, password=cr.password
        )
        with AltegioClient(settings(server, tmp_path, credentials=creds)) as client:
            assert [c.id for c in client.list_chains()] == server.dataset.chain_ids()
        wrong = Credentials(partner_token=cr.partner_token, login=cr.login, password="nope")
        with (
            AltegioClient(settings(server, tmp_path, credentials=wrong)) as client,
            pytest.raises(AuthError, match="ALTEGIO_LOGIN/ALTEGIO_PASSWORD"),
        ):
            client.list_chains()


def test_no_secret_in_logs_exceptions_or_reprs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = Faults(error_every=3, drop_every=5, forbidden_chain=0)
    with serve(replace(BASE_CFG, faults=faults, rate_limit=50.0, rate_limit_burst=1)) as server:
        cr = server.credentials
        creds = Credentials(
            partner_token=cr.partner_token, user_token="stale", login=cr.login, password=cr.password
        )
        errors: list[BaseException] = []
        with AltegioClient(settings(server, tmp_path, credentials=creds, rate_limit=100)) as client:
            for chain in client.list_chains():
                try:
                    for _ in client.fetch_transaction_days(chain.id, DAYS, workers=3):
                        pass
                except AccessDenied as exc:
                    errors.append(exc)
            texts = [repr(client), repr(client.settings), repr(client._session), str(client.stats)]
        bad = Credentials(
            partner_token=cr.partner_token, login=cr.login, password=cr.password + "x"
        )
        with AltegioClient(settings(server, tmp_path, credentials=bad)) as client:
            with pytest.raises(AuthError) as info:
                client.list_chains()
            errors.append(info.value)
    assert errors
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + [caplog.text]
    texts += [str(r.args) for r in caplog.records]
    texts += [p.name + p.read_text() for p in tmp_path.iterdir()]
    for secret in (cr.partner_token, cr.user_token, cr.password, cr.password + "x"):
        for text in texts:
            assert secret not in text
