"""Analytics marts built inside the warehouse from schema ``altegio``.

Each mart is one ``CREATE TABLE marts.<name> AS ...`` over the already-loaded ``altegio`` tables;
``MART_DOCS`` says what one row of each mart means (the README, the COMMENTs and the notebooks
all read it from here).

Conventions shared by every mart:
- Transaction meaning comes from ``altegio.enum_transaction_type.direction`` (accrual,
  withdrawal, expiry, discount, certificate, membership, deposit), not from hard-coded type codes;
  a code missing from the enum gets the direction ``unknown``.
- Money and points are summed as magnitudes (``abs(amount)``) where the direction already says
  which way they move, so the marts do not depend on the API's sign convention.
- Everything is computed over the loaded window only: the points liability starts at 0 on a
  chain's first loaded transaction day.
- Marts over schema ``altegio_history`` (``from_history``) see the world as the loads saw it:
  history starts with a chain's first load, and a change counts from the run that read it.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mart:
    """One mart: its table name in schema ``marts``, what one row means, and its query."""

    name: str
    doc: str
    query: str
    # Built from schema altegio_history (only when the publish is given the history).
    from_history: bool = False


# Every transaction joined to its direction; created as the temporary view ``_tx`` before the
# marts are built (it is not part of the published file).
DIRECTED_TRANSACTIONS_VIEW = "_tx"
# Only the columns the marts rely on (docs/internals.md) are selected, so the view does not
# depend on any other column of the table (the lake table may carry its own decoded direction).
DIRECTED_TRANSACTIONS_SQL = """
    SELECT
        t.id, t.chain_id, t.transaction_date, t.visit_id, t.amount, t.type_id, t.type,
        t.type_title, t.program_id, t.certificate_id, t.abonement_id,
        coalesce(e.direction, 'unknown') AS direction
    FROM altegio.loyalty_transactions AS t
    LEFT JOIN altegio.enum_transaction_type AS e ON e.code = t.type_id
"""

MARTS: tuple[Mart, ...] = (
    Mart(
        name="daily_loyalty_activity",
        doc=(
            "One row per chain, transaction day and transaction type: how many loyalty "
            "transactions of that type happened, their summed amount (as sent by the API), "
            "distinct visits, and the type's direction."
        ),
        query="""
                SELECT
            chain_id,
            transaction_date,
            type_id,
            any_value(type) AS type,
            any_value(type_title) AS type_title,
            any_value(direction) AS direction,
            count(*) AS transaction_count,
            sum(amount) AS amount_total,
            count(DISTINCT visit_id) AS distinct_visits
        FROM _tx
        GROUP BY chain_id, transaction_date, type_id
        ORDER BY chain_id, transaction_date, type_id
        """,
    ),
    Mart(
        name="points_liability",
        doc=(
            "One row per chain and calendar day (every day from the chain's first to its last "
            "loaded transaction day): points accrued, withdrawn and expired that day, the net "
            "change (accrued - withdrawn - expired) and the cumulative liability (running sum "
            "of the net change since the first loaded day)."
        ),
        query="""
        WITH bounds AS (
            SELECT chain_id, min(transaction_date) AS first_day, max(transaction_date) AS last_day
            FROM _tx
            GROUP BY chain_id
        ),
        days AS (
            SELECT
                chain_id,
                CAST(unnest(generate_series(
                    CAST(first_day AS TIMESTAMP), CAST(last_day AS TIMESTAMP), INTERVAL 1 DAY
                )) AS DATE) AS transaction_date
            FROM bounds
        ),
        flows AS (
            SELECT
                chain_id,
                transaction_date,
                coalesce(sum(abs(amount)) FILTER (WHERE direction = 'accrual'), 0) AS accrued,
                coalesce(sum(abs(amount)) FILTER (WHERE direction = 'withdrawal'), 0) AS withdrawn,
                coalesce(sum(abs(amount)) FILTER (WHERE direction = 'expiry'), 0) AS expired
            FROM _tx
            GROUP BY chain_id, transaction_date
        ),
        daily AS (
            SELECT
                d.chain_id,
                d.transaction_date,
                coalesce(f.accrued, 0) AS accrued,
                coalesce(f.withdrawn, 0) AS withdrawn,
                coalesce(f.expired, 0) AS expired
            FROM days AS d
            LEFT JOIN flows AS f USING (chain_id, transaction_date)
        )
        SELECT
            chain_id,
            transaction_date,
            CAST(accrued AS DOUBLE) AS accrued,
            CAST(withdrawn AS DOUBLE) AS withdrawn,
            CAST(expired AS DOUBLE) AS expired,
            CAST(accrued - withdrawn - expired AS DOUBLE) AS net_change,
            CAST(sum(accrued - withdrawn - expired) OVER (
                PARTITION BY chain_id ORDER BY transaction_date
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS DOUBLE) AS cumulative_liability
        FROM daily
        ORDER BY chain_id, transaction_date
        """,
    ),
    Mart(
        name="membership_type_sales",
        doc=(
            "One row per chain and membership type (declared or seen on a sold membership): "
            "memberships sold, how many are issued/active/expired/used up, visits included "
            "(sold x visits per membership, unlimited balances excluded), visits remaining, "
            "visits used, utilization = used / included, and membership-use transactions."
        ),
        query="""
        WITH type_keys AS (
            SELECT chain_id, id AS membership_type_id FROM altegio.membership_types
            UNION
            SELECT chain_id, membership_type_id FROM altegio.memberships
            WHERE membership_type_id IS NOT NULL
        ),
        type_links AS (
            SELECT chain_id, membership_type_id,
                   sum(count) FILTER (WHERE NOT coalesce(is_unlimited, false)) AS visits
            FROM altegio.membership_type_balance_links
            GROUP BY chain_id, membership_type_id
        ),
        type_visits AS (
            SELECT
                mt.chain_id,
                mt.id AS membership_type_id,
                mt.title,
                CASE WHEN coalesce(mt.is_united_balance, false)
                     THEN coalesce(mt.united_balance_services_count, 0)
                     ELSE coalesce(l.visits, 0) END AS visits_per_membership
            FROM altegio.membership_types AS mt
            LEFT JOIN type_links AS l
                ON l.chain_id = mt.chain_id AND l.membership_type_id = mt.id
        ),
        membership_links AS (
            SELECT chain_id, membership_id,
                   sum(count) FILTER (WHERE NOT coalesce(is_unlimited, false)) AS visits
            FROM altegio.membership_balance_links
            GROUP BY chain_id, membership_id
        ),
        sold AS (
            SELECT
                m.chain_id,
                m.id AS membership_id,
                m.membership_type_id,
                m.membership_type_title,
                m.status_id,
                CASE WHEN coalesce(m.is_united_balance, false)
                     THEN coalesce(m.united_balance_services_count, 0)
                     ELSE coalesce(ml.visits, 0) END AS visits_remaining
            FROM altegio.memberships AS m
            LEFT JOIN membership_links AS ml
                ON ml.chain_id = m.chain_id AND ml.membership_id = m.id
        ),
        -- status_id codes are E4 (contract section 7): 1 issued, 2 active, 3 expired, 4 used up.
        sales AS (
            SELECT
                chain_id,
                membership_type_id,
                any_value(membership_type_title) AS membership_type_title,
                count(*) AS memberships_sold,
                count(*) FILTER (WHERE status_id = 1) AS issued_count,
                count(*) FILTER (WHERE status_id = 2) AS active_count,
                count(*) FILTER (WHERE status_id = 3) AS expired_count,
                count(*) FILTER (WHERE status_id = 4) AS used_up_count,
                sum(visits_remaining) AS visits_remaining
            FROM sold
            GROUP BY chain_id, membership_type_id
        ),
        -- E15 code 9 is a membership use (a visit); code 10 (cost recalculation) shares the
        -- direction 'membership' but is not a visit, so the code is named here.
        uses AS (
            SELECT s.chain_id, s.membership_type_id, count(*) AS membership_use_transactions
            FROM altegio.loyalty_transactions AS t
            JOIN sold AS s ON s.chain_id = t.chain_id AND s.membership_id = t.abonement_id
            WHERE t.type_id = 9
            GROUP BY s.chain_id, s.membership_type_id
        ),
        joined AS (
            SELECT
                k.chain_id,
                k.membership_type_id,
                coalesce(tv.title, s.membership_type_title) AS membership_type_title,
                coalesce(s.memberships_sold, 0) AS memberships_sold,
                coalesce(s.issued_count, 0) AS issued_count,
                coalesce(s.active_count, 0) AS active_count,
                coalesce(s.expired_count, 0) AS expired_count,
                coalesce(s.used_up_count, 0) AS used_up_count,
                coalesce(tv.visits_per_membership, 0) AS visits_per_membership,
                coalesce(s.memberships_sold, 0) * coalesce(tv.visits_per_membership, 0)
                    AS visits_included,
                coalesce(s.visits_remaining, 0) AS visits_remaining,
                coalesce(u.membership_use_transactions, 0) AS membership_use_transactions
            FROM type_keys AS k
            LEFT JOIN type_visits AS tv
                ON tv.chain_id = k.chain_id AND tv.membership_type_id = k.membership_type_id
            LEFT JOIN sales AS s
                ON s.chain_id = k.chain_id AND s.membership_type_id = k.membership_type_id
            LEFT JOIN uses AS u
                ON u.chain_id = k.chain_id AND u.membership_type_id = k.membership_type_id
        )
        SELECT
            chain_id,
            membership_type_id,
            membership_type_title,
            CAST(memberships_sold AS BIGINT) AS memberships_sold,
            CAST(issued_count AS BIGINT) AS issued_count,
            CAST(active_count AS BIGINT) AS active_count,
            CAST(expired_count AS BIGINT) AS expired_count,
            CAST(used_up_count AS BIGINT) AS used_up_count,
            CAST(visits_per_membership AS BIGINT) AS visits_per_membership,
            CAST(visits_included AS BIGINT) AS visits_included,
            CAST(visits_remaining AS BIGINT) AS visits_remaining,
            CAST(visits_included - visits_remaining AS BIGINT) AS visits_used,
            CAST((visits_included - visits_remaining) AS DOUBLE)
                / nullif(visits_included, 0) AS utilization,
            CAST(membership_use_transactions AS BIGINT) AS membership_use_transactions
        FROM joined
        ORDER BY chain_id, membership_type_id
        """,
    ),
    Mart(
        name="certificate_activity",
        doc=(
            "One row per chain and certificate type: face value, certificates issued so far "
            "(released_total) and the face value issued (face value x released_total)."
        ),
        query="""
        SELECT
            chain_id,
            id AS certificate_type_id,
            title AS certificate_type_title,
            is_multi,
            is_archived,
            balance AS face_value,
            CAST(coalesce(released_total, 0) AS BIGINT) AS released_total,
            CAST(balance * coalesce(released_total, 0) AS DOUBLE) AS face_value_issued
        FROM altegio.certificate_types
        ORDER BY chain_id, certificate_type_id
        """,
    ),
    Mart(
        name="certificate_redemptions",
        doc=(
            "One row per chain and transaction day with at least one certificate redemption "
            "(direction 'certificate', E15 type 8): redemption count, redeemed amount and "
            "distinct certificates used."
        ),
        query="""
                SELECT
            chain_id,
            transaction_date,
            count(*) AS redemption_count,
            CAST(sum(abs(amount)) AS DOUBLE) AS redemption_amount,
            count(DISTINCT certificate_id) AS distinct_certificates
        FROM _tx
        WHERE direction = 'certificate'
        GROUP BY chain_id, transaction_date
        ORDER BY chain_id, transaction_date
        """,
    ),
    Mart(
        name="promotion_effect",
        doc=(
            "One row per chain and promotion (declared, or referenced by a transaction's "
            "program_id): promotion title and type, discount given (direction 'discount'), "
            "points accrued attributed to it (direction 'accrual'), all its transactions and "
            "the distinct visits they touch."
        ),
        query="""
        WITH keys AS (
            SELECT chain_id, id AS promotion_id FROM altegio.promotions
            UNION
            SELECT chain_id, program_id FROM altegio.loyalty_transactions
            WHERE program_id IS NOT NULL
        ),
        effect AS (
            SELECT
                chain_id,
                program_id AS promotion_id,
                count(*) AS transaction_count,
                count(DISTINCT visit_id) AS distinct_visits,
                count(*) FILTER (WHERE direction = 'discount') AS discount_transactions,
                coalesce(sum(abs(amount)) FILTER (WHERE direction = 'discount'), 0)
                    AS discount_given,
                count(*) FILTER (WHERE direction = 'accrual') AS accrual_transactions,
                coalesce(sum(abs(amount)) FILTER (WHERE direction = 'accrual'), 0)
                    AS accruals_attributed
            FROM _tx
            WHERE program_id IS NOT NULL
            GROUP BY chain_id, program_id
        )
        SELECT
            k.chain_id,
            k.promotion_id,
            p.title AS promotion_title,
            p.type AS promotion_type,
            p.value_unit,
            CAST(coalesce(e.transaction_count, 0) AS BIGINT) AS transaction_count,
            CAST(coalesce(e.distinct_visits, 0) AS BIGINT) AS distinct_visits,
            CAST(coalesce(e.discount_transactions, 0) AS BIGINT) AS discount_transactions,
            CAST(coalesce(e.discount_given, 0) AS DOUBLE) AS discount_given,
            CAST(coalesce(e.accrual_transactions, 0) AS BIGINT) AS accrual_transactions,
            CAST(coalesce(e.accruals_attributed, 0) AS DOUBLE) AS accruals_attributed
        FROM keys AS k
        LEFT JOIN altegio.promotions AS p ON p.chain_id = k.chain_id AND p.id = k.promotion_id
        LEFT JOIN effect AS e ON e.chain_id = k.chain_id AND e.promotion_id = k.promotion_id
        ORDER BY k.chain_id, k.promotion_id
        """,
    ),
    Mart(
        name="deposit_balances",
        doc=(
            "One row per chain, deposit type and day the balances were read (the day of "
            "_extracted_at in the chain's time zone: there is no balance history yet): client "
            "accounts, their total balance, total reserved balance and how many are blocked."
        ),
        query="""
        SELECT
            d.chain_id,
            CAST(timezone(coalesce(c.timezone, 'UTC'), d._extracted_at) AS DATE) AS balance_day,
            d.deposit_type_id,
            any_value(d.deposit_type_title) AS deposit_type_title,
            CAST(count(*) AS BIGINT) AS accounts,
            CAST(coalesce(sum(d.balance), 0) AS DOUBLE) AS total_balance,
            CAST(coalesce(sum(d.reserved_balance), 0) AS DOUBLE) AS total_reserved,
            CAST(count(*) FILTER (WHERE d.blocked) AS BIGINT) AS blocked_accounts
        FROM altegio.deposits AS d
        LEFT JOIN altegio.chains AS c ON c.chain_id = d.chain_id
        GROUP BY d.chain_id, balance_day, d.deposit_type_id
        ORDER BY d.chain_id, balance_day, d.deposit_type_id
        """,
    ),
)


def price_periods_sql(table: str, id_column: str, tracked: dict[str, str], title: str) -> str:
    """Periods of one record's tracked values from its history: consecutive versions with the
    same values (and not deleted) form one period; a deletion ends it; `valid_to` NULL = still
    current. `tracked`: history column -> mart column."""
    lagged = ", ".join(f"lag({c}) OVER w AS prev_{c}" for c in tracked)
    differs = " OR ".join(f"{c} IS DISTINCT FROM prev_{c}" for c in tracked)
    values = ", ".join(f"any_value({c}) AS {name}" for c, name in tracked.items())
    return f"""
        WITH v AS (
            SELECT chain_id, id, {title} AS title, {", ".join(tracked)}, _is_deleted,
                   _valid_from, _valid_to, lag(_is_deleted) OVER w AS prev_deleted, {lagged}
            FROM altegio_history.{table}
            WINDOW w AS (PARTITION BY chain_id, id ORDER BY _valid_from)
        ),
        marked AS (
            SELECT *, sum(CASE WHEN prev_deleted IS NULL OR _is_deleted <> prev_deleted
                               OR {differs} THEN 1 ELSE 0 END)
                      OVER (PARTITION BY chain_id, id ORDER BY _valid_from) AS period
            FROM v
        )
        SELECT
            chain_id,
            id AS {id_column},
            arg_max(title, _valid_from) AS title,
            {values},
            min(_valid_from) AS valid_from,
            CASE WHEN bool_or(_valid_to IS NULL) THEN NULL ELSE max(_valid_to) END AS valid_to
        FROM marked
        WHERE NOT _is_deleted
        GROUP BY chain_id, id, period
        ORDER BY chain_id, {id_column}, valid_from
    """  # noqa: S608 (table and column names are this module's constants)


HISTORY_MARTS: tuple[Mart, ...] = (
    Mart(
        name="membership_status_daily",
        doc=(
            "One row per chain, membership type, day and status (E4): how many sold memberships "
            "were in that status at the end of that day, as the loads saw them (from "
            "altegio_history.memberships, day in the chain's time zone), and how many of them "
            "were frozen. Days run from the chain's first load to its last."
        ),
        query="""
        WITH tz AS (SELECT chain_id, coalesce(timezone, 'UTC') AS zone FROM altegio.chains),
        v AS (
            SELECT
                h.chain_id, h.membership_type_id, h.status_id, h.status, h.is_frozen,
                h._is_deleted,
                CAST(timezone(coalesce(tz.zone, 'UTC'), h._valid_from) AS DATE) AS from_day,
                CAST(timezone(coalesce(tz.zone, 'UTC'), h._valid_to) AS DATE) AS to_day
            FROM altegio_history.memberships AS h
            LEFT JOIN tz USING (chain_id)
        ),
        last_load AS (
            SELECT CAST(max(started_at) AS DATE) AS day FROM altegio.load_steps
            WHERE step LIKE 'memberships%'
        ),
        bounds AS (
            SELECT chain_id, min(from_day) AS first_day,
                   greatest(max(from_day), coalesce(any_value(l.day), max(from_day))) AS last_day
            FROM v, last_load AS l
            GROUP BY chain_id
        ),
        days AS (
            SELECT chain_id, CAST(unnest(generate_series(
                CAST(first_day AS TIMESTAMP), CAST(last_day AS TIMESTAMP), INTERVAL 1 DAY
            )) AS DATE) AS day
            FROM bounds
        )
        SELECT
            d.chain_id,
            v.membership_type_id,
            d.day,
            v.status_id,
            any_value(v.status) AS status,
            CAST(count(*) AS BIGINT) AS memberships,
            CAST(count(*) FILTER (WHERE v.is_frozen) AS BIGINT) AS frozen
        FROM days AS d
        JOIN v ON v.chain_id = d.chain_id AND v.from_day <= d.day
              AND (v.to_day IS NULL OR v.to_day > d.day)
        WHERE NOT v._is_deleted
        GROUP BY d.chain_id, v.membership_type_id, d.day, v.status_id
        ORDER BY d.chain_id, v.membership_type_id, d.day, v.status_id
        """,
        from_history=True,
    ),
    Mart(
        name="membership_type_prices",
        doc=(
            "One row per chain, membership type and price period: the type's cost (and online "
            "sale price) from valid_from until valid_to (NULL = still current), from "
            "altegio_history.membership_types; a deletion ends a period, a restore starts one."
        ),
        query=price_periods_sql(
            "membership_types",
            "membership_type_id",
            {"cost": "cost", "online_sale_price": "online_sale_price"},
            "title",
        ),
        from_history=True,
    ),
    Mart(
        name="certificate_type_prices",
        doc=(
            "One row per chain, certificate type and price period: its face value (balance) "
            "and online sale price from valid_from until valid_to (NULL = still current), from "
            "altegio_history.certificate_types; a deletion ends a period."
        ),
        query=price_periods_sql(
            "certificate_types",
            "certificate_type_id",
            {"balance": "face_value", "online_sale_price": "online_sale_price"},
            "title",
        ),
        from_history=True,
    ),
    Mart(
        name="promotion_periods",
        doc=(
            "One row per chain, promotion and period it existed in the chain's promotion lists "
            "(from altegio_history.promotions): its latest title and type in that period, "
            "valid_from (first seen) and valid_to (when it was deleted; NULL = still there)."
        ),
        query=price_periods_sql("promotions", "promotion_id", {"type": "type"}, "title"),
        from_history=True,
    ),
)

MARTS = (*MARTS, *HISTORY_MARTS)

MART_DOCS: dict[str, str] = {mart.name: mart.doc for mart in MARTS}
HISTORY_MART_DOCS: dict[str, str] = {mart.name: mart.doc for mart in HISTORY_MARTS}
"""Mart name (in schema ``marts``) -> what one row means."""
