"""Webhook subscription rules (SPEC 2) and event type / timestamp rules (SPEC 1, 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from hookline.catalog import CATEGORIES, EVENT_TYPES
from hookline.domain.events import category_of, check_type, format_ts, parse_ts
from hookline.domain.webhooks import (
    ALL,
    CategoryFilter,
    WebhookSpec,
    check_categories,
    check_package_size,
    check_url,
    delay_seconds,
)
from hookline.errors import ValidationFailed


def rejected(exc: pytest.ExceptionInfo[ValidationFailed], field: str) -> None:
    assert exc.value.field == field
    assert exc.value.status == 400
    assert exc.value.detail


# --------------------------------------------------------------------------- URL


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks",
        "https://example.com",
        "https://hooks.example.co.uk:8443/a/b?c=d&e=f",
        "HTTPS://Example.COM/x",
        "https://my-app.example.com./trailing-dot",
        "https://xn--bcher-kva.example/path",
        "https://example.com/" + "a" * (1000 - len("https://example.com/")),  # exactly 1000
        "https://example.com/caf%C3%A9/%7Bid%7D?q=a%20b&x=[1]",  # escapes, brackets
        "https://example.com/a;b=c/~user/!$&'()*+,@:",
    ],
)
def test_good_urls(url: str) -> None:
    assert check_url(url, allow_insecure=False) == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://example.com/hooks", id="http"),
        pytest.param("ftp://example.com/", id="ftp"),
        pytest.param("example.com/hooks", id="no-scheme"),
        pytest.param("https://93.184.216.34/hooks", id="ipv4-literal"),
        pytest.param("https://127.0.0.1/", id="ipv4-loopback"),
        pytest.param("https://[::1]/", id="ipv6-loopback"),
        pytest.param("https://[2606:4700:4700::1111]/hooks", id="ipv6-literal"),
        pytest.param("https://[::ffff:127.0.0.1]/", id="ipv4-mapped"),
        pytest.param("https://user:pass@example.com/", id="userinfo"),
        pytest.param("https://user@example.com/", id="user"),
        pytest.param("https://@example.com/", id="empty-userinfo"),
        pytest.param("https://example.com/#frag", id="fragment"),
        pytest.param("https://example.com/#", id="empty-fragment"),
        pytest.param("https:///path", id="no-host"),
        pytest.param("https://", id="only-scheme"),
        pytest.param("https://localhost/", id="single-label"),
        pytest.param("https://exa mple.com/", id="space-in-host"),
        pytest.param("https://example.com/a b", id="space-in-path"),
        pytest.param("https://example.com/\n", id="newline"),
        pytest.param("https://exa\tmple.com/", id="tab-in-host"),
        pytest.param(" https://example.com/", id="leading-space"),
        pytest.param("https://example.com/ ", id="trailing-space"),
        pytest.param("https://example.com:99999/", id="bad-port"),
        pytest.param("https://example.com:abc/", id="non-numeric-port"),
        pytest.param("https://-bad.example.com/", id="label-leading-hyphen"),
        pytest.param(
            "https://example.com/" + "a" * (1001 - len("https://example.com/")), id="1001-chars"
        ),
        pytest.param('https://example.com/"quoted"', id="unencoded-quote"),
        pytest.param("https://example.com/{id}", id="unencoded-braces"),
        pytest.param("https://example.com/a|b^c", id="unencoded-pipe-caret"),
        pytest.param("https://example.com/a\\b", id="unencoded-backslash"),
        pytest.param("https://example.com/<x>", id="unencoded-angle"),
        pytest.param("https://example.com/caf\u00e9", id="non-ascii-path"),
        pytest.param("https://example.com/%zz", id="bad-escape"),
        pytest.param("https://example.com/100%", id="bare-percent"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(42, id="int"),
    ],
)
def test_bad_urls(url: object) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_url(url, allow_insecure=False)
    rejected(exc, "url")


def test_url_field_name_can_be_overridden() -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_url("http://example.com/", allow_insecure=False, field="target")
    assert exc.value.field == "target"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "http://localhost:9000/hook",
        "https://[::1]:8443/",
        "http://10.0.0.5/",
    ],
)
def test_dev_mode_allows_http_and_ip_literals(url: str) -> None:
    assert check_url(url, allow_insecure=True) == url
    with pytest.raises(ValidationFailed):
        check_url(url, allow_insecure=False)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "http://user:pw@127.0.0.1:8080/",
        "http://127.0.0.1:8080/#x",
        "http:///x",
        "http://127.0.0.1:8080/a b",
        "http://127.0.0.1:8080/" + "x" * 1000,
    ],
)
def test_dev_mode_keeps_the_other_rules(url: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_url(url, allow_insecure=True)
    rejected(exc, "url")


@pytest.mark.parametrize(
    "url",
    ["https://10.0.0.1./", "https://127.1/", "https://169.254.169.254./latest", "https://0x7f.1/"],
)
def test_numeric_hosts_are_ip_literals(url: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_url(url, allow_insecure=False)
    rejected(exc, "url")


# --------------------------------------------------------------------------- delay


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("1s", 1), ("9s", 9), ("10s", 10), ("99s", 99), ("1m", 60), ("5m", 300), ("99m", 5940)],
)
def test_good_delays(delay: str, seconds: int) -> None:
    assert delay_seconds(delay) == seconds


@pytest.mark.parametrize(
    "delay",
    [
        "0s",
        "0m",
        "00s",
        "01s",
        "100s",
        "100m",
        "1h",
        "1d",
        "1",
        "s",
        "",
        " 1s",
        "1s ",
        "1S",
        "1.5s",
        "-1s",
        "+1s",
        "1ms",
        1,
        None,
        "\u0661s",
    ],
)
def test_bad_delays(delay: object) -> None:
    with pytest.raises(ValidationFailed) as exc:
        delay_seconds(delay)  # type: ignore[arg-type]
    rejected(exc, "config.delay")


def test_delay_with_trailing_newline_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as exc:
        delay_seconds("5s\n")
    rejected(exc, "config.delay")


# --------------------------------------------------------------------------- package size


@pytest.mark.parametrize("size", [100, 101, 10240, 1_048_575, 1_048_576])
def test_good_package_sizes(size: int) -> None:
    assert check_package_size(size) == size


@pytest.mark.parametrize("size", [99, 0, -1, 1_048_577, 10**12, True, False, 1024.0, "1024", None])
def test_bad_package_sizes(size: object) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_package_size(size)
    rejected(exc, "config.max_package_size")


# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize(
    ("types", "exclude"),
    [
        (["ALL"], []),
        (["ALL"], ["ORDER", "USER"]),
        (["ORDER"], []),
        (["ORDER", "EXECUTION", "WEBHOOK"], []),
        (sorted(CATEGORIES), []),
    ],
)
def test_good_categories(types: list[str], exclude: list[str]) -> None:
    assert check_categories(types, exclude) == (types, exclude)


def test_check_categories_accepts_tuples_and_returns_lists() -> None:
    assert check_categories(("ALL",), ("USER",)) == (["ALL"], ["USER"])


@pytest.mark.parametrize(
    ("types", "exclude", "field"),
    [
        pytest.param([], [], "type", id="empty"),
        pytest.param(["ORDERS"], [], "type", id="unknown"),
        pytest.param(["order"], [], "type", id="lower-case"),
        pytest.param(["ORDER.FILLED"], [], "type", id="event-type-not-category"),
        pytest.param(["ALL", "ORDER"], [], "type", id="all-combined"),
        pytest.param(["ORDER", "ALL"], [], "type", id="all-combined-after"),
        pytest.param(["ORDER", "ORDER"], [], "type", id="duplicate"),
        pytest.param(["ALL", "ALL"], [], "type", id="duplicate-all"),
        pytest.param(["ALL"], ["NOPE"], "exclude_type", id="unknown-exclusion"),
        pytest.param(["ALL"], ["USER", "USER"], "exclude_type", id="duplicate-exclusion"),
        pytest.param(["ALL"], ["ALL"], "exclude_type", id="all-excluded"),
        pytest.param(["ORDER"], ["USER"], "exclude_type", id="exclude-without-all"),
    ],
)
def test_bad_categories(types: list[str], exclude: list[str], field: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_categories(types, exclude)
    rejected(exc, field)


def test_category_filter_all_minus_exclusions() -> None:
    f = CategoryFilter.of(["ALL"], ["USER", "REPORT"])
    assert f.include is None
    assert f.matches("ORDER")
    assert f.matches("WEBHOOK")
    assert f.matches("USER_CHECK")  # a prefix of an excluded category is another category
    assert not f.matches("USER")
    assert not f.matches("REPORT")


def test_category_filter_explicit_set() -> None:
    f = CategoryFilter.of(["ORDER", "EXECUTION"], [])
    assert f.include == frozenset({"ORDER", "EXECUTION"})
    assert f.matches("ORDER")
    assert f.matches("EXECUTION")
    assert not f.matches("ORDER_CANCELLATION")
    assert not f.matches("USER")


def test_category_filter_everything() -> None:
    f = CategoryFilter.of([ALL], [])
    assert all(f.matches(c) for c in CATEGORIES)


def test_category_filter_exclusion_wins() -> None:
    assert not CategoryFilter(include=frozenset({"ORDER"}), exclude=frozenset({"ORDER"})).matches(
        "ORDER"
    )


# --------------------------------------------------------------------------- WebhookSpec


def test_webhook_spec_defaults_are_valid() -> None:
    spec = WebhookSpec(title="  Orders  ", url="https://example.com/hook").validated(
        allow_insecure=False
    )
    assert spec.title == "Orders"
    assert spec.types == ("ALL",)
    assert spec.exclude_types == ()
    assert spec.enabled is True
    assert spec.delay == "1s"
    assert spec.max_package_size == 10240
    assert spec.delay_timedelta == timedelta(seconds=1)
    assert spec.category_filter == CategoryFilter(include=None, exclude=frozenset())


def test_webhook_spec_full() -> None:
    spec = WebhookSpec(
        title="t",
        url="https://example.com/hook",
        types=["ALL"],  # type: ignore[arg-type]
        exclude_types=["USER"],  # type: ignore[arg-type]
        enabled=False,
        delay="2m",
        max_package_size=100,
    ).validated(allow_insecure=False)
    assert spec.types == ("ALL",)
    assert spec.exclude_types == ("USER",)
    assert spec.enabled is False
    assert spec.delay_timedelta == timedelta(minutes=2)
    assert not spec.category_filter.matches("USER")
    assert spec.category_filter.matches("ORDER")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 101}, "title"),
        ({"title": None}, "title"),
        ({"url": "http://example.com/"}, "url"),
        ({"types": ("NOPE",)}, "type"),
        ({"exclude_types": ("ALL",)}, "exclude_type"),
        ({"types": ("ORDER",), "exclude_types": ("USER",)}, "exclude_type"),
        ({"delay": "0s"}, "config.delay"),
        ({"max_package_size": 99}, "config.max_package_size"),
        ({"max_package_size": True}, "config.max_package_size"),
    ],
)
def test_webhook_spec_names_the_bad_field(changes: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"title": "t", "url": "https://example.com/hook", **changes}
    with pytest.raises(ValidationFailed) as exc:
        WebhookSpec(**fields).validated(allow_insecure=False)  # type: ignore[arg-type]
    rejected(exc, field)


def test_webhook_spec_title_of_100_chars_is_fine() -> None:
    spec = WebhookSpec(title="x" * 100, url="https://example.com/").validated(allow_insecure=False)
    assert len(spec.title) == 100


def test_webhook_spec_dev_mode() -> None:
    spec = WebhookSpec(title="dev", url="http://127.0.0.1:8080/x")
    assert spec.validated(allow_insecure=True).url == "http://127.0.0.1:8080/x"
    with pytest.raises(ValidationFailed) as exc:
        spec.validated(allow_insecure=False)
    rejected(exc, "url")


# --------------------------------------------------------------------------- event types


@pytest.mark.parametrize(
    "event_type",
    [
        "ORDER.FILLED",
        "USER.CREATED",
        "WEBHOOK.TEST",
        "WEBHOOK.DISABLED",
        "VIRTUAL_CASH_DECREASE.QUEUED",
    ],
)
def test_known_types(event_type: str) -> None:
    assert check_type(event_type, open_catalog=False) == event_type
    assert check_type(event_type, open_catalog=True) == event_type


def test_every_catalogue_type_passes_and_has_a_known_category() -> None:
    for event_type in EVENT_TYPES:
        assert check_type(event_type, open_catalog=False) == event_type
        assert category_of(event_type) in CATEGORIES


@pytest.mark.parametrize("event_type", ["ORDER.EXPLODED", "GADGET.CREATED", "A.B", "X1_2.Y_3"])
def test_unknown_but_well_formed_types_need_an_open_catalogue(event_type: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_type(event_type, open_catalog=False)
    rejected(exc, "type")
    assert check_type(event_type, open_catalog=True) == event_type


@pytest.mark.parametrize(
    "event_type",
    [
        "order.filled",
        "Order.Filled",
        "ORDER",
        "ORDER.",
        ".FILLED",
        "ORDER.FILLED.NOW",
        "ORDER FILLED",
        "1ORDER.FILLED",
        "ORDER.1FILLED",
        "_ORDER.FILLED",
        "",
        "ORDER-X.FILLED",
        "A" * 65 + ".B",
        None,
        7,
    ],
)
@pytest.mark.parametrize("open_catalog", [False, True])
def test_malformed_types(event_type: object, open_catalog: bool) -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_type(event_type, open_catalog=open_catalog)
    rejected(exc, "type")


def test_type_with_trailing_newline_is_rejected_in_open_catalogue() -> None:
    with pytest.raises(ValidationFailed):
        check_type("ORDER.FILLED\n", open_catalog=True)


def test_category_of() -> None:
    assert category_of("ORDER_CANCELLATION.REJECTED") == "ORDER_CANCELLATION"
    assert category_of("USER.CREATED") == "USER"


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T12:00:00Z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T12:00:00z", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T12:00:00.123456Z", datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-03-01T12:00:00.5Z", datetime(2024, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-03-01T12:00:00+00:00", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T14:30:00+02:30", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T07:00:00-05:00", datetime(2024, 3, 1, 12, tzinfo=UTC)),
        ("2024-03-01T00:30:00+01:00", datetime(2024, 2, 29, 23, 30, tzinfo=UTC)),
    ],
)
def test_parse_ts(text: str, expected: datetime) -> None:
    parsed = parse_ts(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00",
        "2024-03-01",
        "yesterday",
        "",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-03-01T25:00:00Z",
        "2024-03-01T12:00:00+25:00",
        "Z",
        1709294400,
        None,
    ],
)
def test_parse_ts_rejects(text: object) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_ts(text)
    rejected(exc, "created_at")


def test_parse_ts_field_name() -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_ts("nope", field="since")
    assert exc.value.field == "since"


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_parse_ts_out_of_range_is_a_validation_error(text: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_ts(text)


def test_format_ts_is_fixed_width_utc_with_z() -> None:
    moment = datetime(2024, 3, 1, 14, 0, 0, 7, tzinfo=timezone(timedelta(hours=2)))
    assert format_ts(moment) == "2024-03-01T12:00:00.000007Z"
    assert len(format_ts(datetime(2024, 1, 1, tzinfo=UTC))) == 27
    assert format_ts(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000000Z"
    assert parse_ts(format_ts(moment)) == moment


class _SummerTimeEnds(tzinfo):
    """A zone whose wall clock repeats an hour: UTC+2 at ``fold=0``, UTC+1 at ``fold=1``
    (like Europe/Berlin on 2024-10-27 02:00-03:00, without needing tzdata)."""

    def utcoffset(self, moment: datetime | None) -> timedelta:
        return timedelta(hours=1 if moment is not None and moment.fold else 2)

    def dst(self, moment: datetime | None) -> timedelta:
        return timedelta(hours=0 if moment is not None and moment.fold else 1)

    def tzname(self, moment: datetime | None) -> str:
        return "CET" if moment is not None and moment.fold else "CEST"


def test_format_ts_caches_by_instant_not_by_wall_clock() -> None:
    """Formatting is cached; the two readings of an ambiguous local time (``fold``) compare
    equal as datetimes, yet are different instants and must not share a rendering."""
    first = datetime(2024, 10, 27, 2, 30, tzinfo=_SummerTimeEnds())  # CEST, UTC+2
    second = first.replace(fold=1)  # CET, UTC+1, an hour later
    assert first == second
    assert format_ts(first) == "2024-10-27T00:30:00.000000Z"
    assert format_ts(second) == "2024-10-27T01:30:00.000000Z"
    assert format_ts(first.astimezone(UTC)) == format_ts(first)
