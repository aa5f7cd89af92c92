"""`altegio-loyalty sandbox`: run the sandbox in the foreground until Ctrl-C."""

import argparse
import signal
import threading
from datetime import date

from pipelines.altegio.sandbox.config import Faults, SandboxConfig, SandboxCredentials
from pipelines.altegio.sandbox.server import SandboxServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sandbox options on a (sub)parser."""
    defaults = SandboxConfig()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--chains", type=int, default=defaults.chains)
    parser.add_argument("--locations-per-chain", type=int, default=defaults.locations_per_chain)
    parser.add_argument("--start", type=date.fromisoformat, default=defaults.start)
    parser.add_argument("--end", type=date.fromisoformat, default=defaults.end)
    parser.add_argument("--transactions-per-day", type=int, default=defaults.transactions_per_day)
    parser.add_argument("--memberships-per-day", type=int, default=defaults.memberships_per_day)
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s per client IP")
    parser.add_argument("--rate-limit-burst", type=int, default=defaults.rate_limit_burst)
    parser.add_argument(
        "--no-retry-after", action="store_true", help="answer 429 without Retry-After"
    )
    parser.add_argument(
        "--identities",
        type=int,
        default=defaults.identities,
        help="API identities accepted (identity k: the credentials with -k appended)",
    )
    world = parser.add_argument_group("a world that moves (static by default)")
    world.add_argument(
        "--evolve",
        action="store_true",
        help="days advance on POST /_sandbox/clock ({'days': N} or {'date': 'YYYY-MM-DD'}); "
        "each day brings sales, visits, freezes, expiries, price changes, corrections "
        "(deterministic by --seed)",
    )
    world.add_argument(
        "--wall-clock",
        action="store_true",
        help="with --evolve: 'today' follows the real date (UTC), simulating the days between",
    )
    world.add_argument(
        "--super-user",
        action="store_true",
        help="the credentials are an Altegio super user's (may restore deleted membership types)",
    )
    world.add_argument(
        "--service-links-chain",
        type=int,
        action="append",
        default=[],
        metavar="INDEX",
        help="0-based chain whose membership types take service_links[] instead of the maps",
    )
    faults = parser.add_argument_group("faults (all off by default)")
    faults.add_argument("--error-every", type=int, default=0)
    faults.add_argument("--error-burst", type=int, default=1)
    faults.add_argument("--slow-every", type=int, default=0)
    faults.add_argument("--slow-seconds", type=float, default=0.0)
    faults.add_argument("--drop-every", type=int, default=0)
    faults.add_argument("--truncate-every", type=int, default=0)
    faults.add_argument("--page-size-cap", type=int, default=None)
    faults.add_argument("--overlap-pages", action="store_true")
    faults.add_argument("--stuck-pages", action="store_true")
    faults.add_argument("--unknown-enum-every", type=int, default=0)
    faults.add_argument("--extra-fields", action="store_true")
    faults.add_argument("--numeric-strings", action="store_true")
    faults.add_argument("--wrap-memberships", action="store_true")
    faults.add_argument("--forbidden-chain", type=int, default=None, help="0-based chain index")
    faults.add_argument(
        "--write-error-every", type=int, default=0, help="every Nth write: 5xx, not applied"
    )
    faults.add_argument("--write-error-burst", type=int, default=1)
    faults.add_argument(
        "--write-drop-every",
        type=int,
        default=0,
        help="every Nth write: applied, then the connection closes without an answer",
    )
    faults.add_argument(
        "--certificate-delete-no-content",
        action="store_true",
        help="certificate-type delete answers 204 without a body (default: 200 with one)",
    )


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The SandboxConfig the parsed options describe."""
    return SandboxConfig(
        seed=args.seed,
        chains=args.chains,
        locations_per_chain=args.locations_per_chain,
        start=args.start,
        end=args.end,
        transactions_per_day=args.transactions_per_day,
        memberships_per_day=args.memberships_per_day,
        rate_limit=args.rate_limit,
        rate_limit_burst=args.rate_limit_burst,
        rate_limit_retry_after=not args.no_retry_after,
        host=args.host,
        port=args.port,
        evolve=args.evolve,
        wall_clock=args.wall_clock,
        credentials=SandboxCredentials(super_user=args.super_user),
        identities=args.identities,
        service_links_chains=frozenset(args.service_links_chain),
        faults=Faults(
            error_every=args.error_every,
            error_burst=args.error_burst,
            slow_every=args.slow_every,
            slow_seconds=args.slow_seconds,
            drop_every=args.drop_every,
            truncate_every=args.truncate_every,
            page_size_cap=args.page_size_cap,
            overlap_pages=args.overlap_pages,
            stuck_pages=args.stuck_pages,
            unknown_enum_every=args.unknown_enum_every,
            extra_fields=args.extra_fields,
            numeric_strings=args.numeric_strings,
            wrap_memberships=args.wrap_memberships,
            forbidden_chain=args.forbidden_chain,
            write_error_every=args.write_error_every,
            write_error_burst=args.write_error_burst,
            write_drop_every=args.write_drop_every,
            certificate_type_delete_no_content=args.certificate_delete_no_content,
        ),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; prints the base URL and the (fake) credentials."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"invalid sandbox options: {exc}")
        return 2
    server = SandboxServer(config)
    server.start()
    creds = server.credentials
    print(f"Altegio sandbox serving at {server.base_url}")
    print(f"  partner token : {creds.partner_token}")
    print(f"  user token    : {creds.user_token}")
    print(f"  login/password: {creds.login} / {creds.password}")
    for number, extra in enumerate(server.identity_credentials[1:], start=2):
        print(f"  identity {number:<5}: {extra.partner_token} / {extra.user_token}")
    print(f"  chains        : {', '.join(str(c) for c in server.dataset.chain_ids())}")
    clock = server.dataset.clock
    moving = "moves on POST /_sandbox/clock" if clock.moves else "static: --evolve moves it"
    if clock.follows_wall_clock:
        moving = "follows the real date"
    print(f"  data          : {config.start} .. {server.dataset.last_day()}")
    print(f"  today         : {clock.today} ({moving})")
    print("  stats         : GET  /_sandbox/stats   reset: POST /_sandbox/reset")
    print("  write log     : GET  /_sandbox/requests clock: GET /_sandbox/clock")
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
        print("stopping", flush=True)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main() -> int:
    """Standalone entry: `python -m pipelines.altegio.sandbox.cli`."""
    parser = argparse.ArgumentParser(description="Run the Altegio sandbox in the foreground.")
    add_arguments(parser)
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
