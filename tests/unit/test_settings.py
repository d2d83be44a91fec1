"""Settings read from the environment: every malformed value stops start-up with a
SettingsError naming the variable; an empty value means the default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.settings import Settings, SettingsError
from server.storage.database import redacted

BASE = {"DATABASE_URL": "postgresql://u@127.0.0.1/db", "SAAS_ADMIN_KEY": "sk-admin-0123456789abcdef"}


def test_the_event_loop_is_uvloop_unless_asked_otherwise():
    assert Settings.from_env(BASE).event_loop == "uvloop"
    assert Settings.from_env({**BASE, "SAAS_EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"


def test_an_unknown_event_loop_is_refused_with_the_variable_named():
    with pytest.raises(SettingsError, match="SAAS_EVENT_LOOP must be uvloop or asyncio"):
        Settings.from_env({**BASE, "SAAS_EVENT_LOOP": "trio"})


def test_every_variable_the_server_reads_has_a_row_in_the_readme():
    root = Path(__file__).resolve().parents[2]
    read = set(
        re.findall(r'"((?:SAAS|OTEL|LITELLM)_[A-Z_]+|DATABASE_URL)"', (root / "server" / "settings.py").read_text())
    )
    section = (root / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {
        name for line in section.splitlines() if line.startswith("| `") for name in re.findall(r"`([A-Z_]+)`", line)
    }
    assert read and read <= rows, sorted(read - rows)


def refused(name: str, value: str, match: str) -> None:
    with pytest.raises(SettingsError, match=match) as raised:
        Settings.from_env({**BASE, name: value})
    assert name in str(raised.value)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        # Jobs would expire within seconds of opening, running calls or not.
        ("SAAS_JOB_TTL_SECONDS", "there is no never"),
        # Every call would fail UPSTREAM_TIMEOUT after reaching the provider.
        ("SAAS_UPSTREAM_TIMEOUT_SECONDS", "there is no unlimited"),
        # Every stream would fail at its first pause.
        ("SAAS_STREAM_IDLE_TIMEOUT_SECONDS", "longest silence"),
        # Retention would never run, whatever SAAS_CALL_RETENTION_DAYS says.
        ("SAAS_RETENTION_INTERVAL_SECONDS", "to keep everything"),
        # No team_key.expiring webhook would be sent, whatever SAAS_KEY_EXPIRY_WARNING_DAYS says.
        ("SAAS_KEY_EXPIRY_CHECK_INTERVAL_SECONDS", "no warnings"),
    ],
)
def test_a_timeout_without_an_off_refuses_zero(name, hint):
    refused(name, "0", f"{name} must be greater than 0: .*{hint}")
    refused(name, "0.0", f"{name} must be greater than 0")
    assert Settings.from_env({**BASE, name: "0.5"}) is not None


def test_a_pool_of_no_connections_is_refused_not_made_unlimited():
    refused("SAAS_DB_POOL_SIZE", "0", "SAAS_DB_POOL_SIZE must be at least 1")
    assert Settings.from_env({**BASE, "SAAS_DB_POOL_SIZE": "1", "SAAS_DB_MAX_OVERFLOW": "0"}).db_pool_size == 1


@pytest.mark.parametrize(
    "name",
    [
        "SAAS_KEY_CACHE_TTL_SECONDS",
        "SAAS_USAGE_ROLLUP_INTERVAL_SECONDS",
        "SAAS_EXPIRY_INTERVAL_SECONDS",
        "SAAS_WEBHOOK_INTERVAL_SECONDS",
        "SAAS_CALL_RETENTION_DAYS",
        "SAAS_LEDGER_RETENTION_DAYS",
        "SAAS_WEBHOOK_DELIVERY_RETENTION_DAYS",
        "SAAS_KEY_EXPIRY_WARNING_DAYS",
        "SAAS_SHUTDOWN_DRAIN_SECONDS",
        "SAAS_SHUTDOWN_GRACE_SECONDS",
        "SAAS_DB_STARTUP_TIMEOUT_SECONDS",
        "SAAS_STREAM_KEEPALIVE_SECONDS",
    ],
)
def test_zero_keeps_its_documented_meaning_where_it_has_one(name):
    settings = Settings.from_env({**BASE, name: "0"})
    assert getattr(settings, name.removeprefix("SAAS_").lower()) == 0


def test_finished_webhook_deliveries_are_kept_30_days_unless_told_otherwise():
    assert Settings.from_env(BASE).webhook_delivery_retention_days == 30
    assert (
        Settings.from_env({**BASE, "SAAS_WEBHOOK_DELIVERY_RETENTION_DAYS": " "}).webhook_delivery_retention_days == 30
    )
    assert Settings.from_env({**BASE, "SAAS_WEBHOOK_DELIVERY_RETENTION_DAYS": "7"}).webhook_delivery_retention_days == 7


NUMBERS = [
    "SAAS_GRPC_PORT",
    "SAAS_METRICS_PORT",
    "SAAS_UPSTREAM_TIMEOUT_SECONDS",
    "SAAS_UPSTREAM_RETRIES",
    "SAAS_STREAM_IDLE_TIMEOUT_SECONDS",
    "SAAS_STREAM_KEEPALIVE_SECONDS",
    "SAAS_DB_POOL_SIZE",
    "SAAS_DB_MAX_OVERFLOW",
    "SAAS_MAX_MESSAGE_BYTES",
    "SAAS_SHUTDOWN_GRACE_SECONDS",
    "SAAS_JOB_TTL_SECONDS",
    "SAAS_EXPIRY_INTERVAL_SECONDS",
    "SAAS_KEY_CACHE_TTL_SECONDS",
    "SAAS_USAGE_ROLLUP_INTERVAL_SECONDS",
    "SAAS_DB_STARTUP_TIMEOUT_SECONDS",
    "SAAS_SHUTDOWN_DRAIN_SECONDS",
    "SAAS_CALL_RETENTION_DAYS",
    "SAAS_LEDGER_RETENTION_DAYS",
    "SAAS_WEBHOOK_DELIVERY_RETENTION_DAYS",
    "SAAS_RETENTION_INTERVAL_SECONDS",
    "SAAS_WEBHOOK_INTERVAL_SECONDS",
    "SAAS_KEY_EXPIRY_WARNING_DAYS",
    "SAAS_KEY_EXPIRY_CHECK_INTERVAL_SECONDS",
]


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "-1"])
def test_no_number_setting_takes_a_non_finite_or_negative_value(name, value):
    refused(name, value, name)


def test_every_number_setting_is_in_the_list_above():
    source = (Path(__file__).resolve().parents[2] / "server" / "settings.py").read_text()
    read = set(re.findall(r'(?:number|seconds|days|port)\(\s*"([A-Z_]+)"', source))
    assert read == set(NUMBERS), sorted(read ^ set(NUMBERS))


@pytest.mark.parametrize("name", ["SAAS_JOB_TTL_SECONDS", "SAAS_SHUTDOWN_GRACE_SECONDS", "SAAS_CALL_RETENTION_DAYS"])
def test_a_duration_too_long_for_the_clocks_it_meets_is_refused(name):
    # 1e300 s is finite, but overflows datetime and PostgreSQL's interval on every round.
    refused(name, "1e300", f"{name} must be at most")
    assert Settings.from_env({**BASE, name: "36500"}) is not None  # a hundred years of days still fits


@pytest.mark.parametrize("name", ["SAAS_GRPC_PORT", "SAAS_METRICS_PORT"])
@pytest.mark.parametrize("value", ["0", "65536", "99999", "70000"])
def test_a_port_is_from_1_to_65535(name, value):
    refused(name, value, f"{name} must be a port number from 1 to 65535")


def test_ports_at_the_ends_of_the_range_and_metrics_off():
    settings = Settings.from_env({**BASE, "SAAS_GRPC_PORT": "65535", "SAAS_METRICS_PORT": "1"})
    assert (settings.grpc_port, settings.metrics_port) == (65535, 1)
    assert Settings.from_env({**BASE, "SAAS_METRICS_PORT": " OFF "}).metrics_port is None


@pytest.mark.parametrize(
    "url",
    [
        "mysql://x/y",
        "sqlite:///db",
        "localhost:5432/saas",
        "postgresql//u@h/db",
        "postgresql://u@h:abc/db",
        "postgresql://u@h:99999/db",
        "postgresql://u@h:/db",
        "postgresql://[::1/db",
        "postgresql://app:p@ssw0rd@db:5432/x",  # an @ left in the password: the rest would be the host
        "postgresql://app:Sup@er@db/x",
    ],
)
def test_a_database_url_the_server_cannot_use_is_refused_with_the_variable_named(url):
    refused("DATABASE_URL", url, "DATABASE_URL")


def test_a_refused_database_url_does_not_echo_its_password():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE, "DATABASE_URL": "postgresql://user:s3cret@h:5x/db"})
    assert "s3cret" not in str(raised.value) and "percent-encoded" in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@127.0.0.1:5432/saas",
        "postgresql+psycopg://u@db/saas",
        "postgres://u@db/saas",
        "postgresql://postgres:@/postgres?host=/tmp/pg",
        "postgresql://u@[::1]:5432/saas",
        "postgresql://u:p%40ss@db/saas?options=a@b",  # an @ past the host is not in the credentials
    ],
)
def test_the_usual_postgresql_urls_are_accepted(url):
    assert Settings.from_env({**BASE, "DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("postgresql://app:p@ssw0rd-TAIL@127.0.0.1:1/x", "postgresql://***@127.0.0.1:1/x"),
        ("postgresql://app:s3cret@db:5432/x?sslmode=require", "postgresql+psycopg://app:***@db:5432/x?sslmode=require"),
        # libpq takes a password from the query too, and other secrets (those PQconndefaults
        # marks to hide, and the SCRAM keys, which authenticate like a password).
        (
            "postgresql://u:PW6@/db?host=/nonexistent&password=PW7",
            "postgresql+psycopg://u:***@/db?host=%2Fnonexistent&password=***",
        ),
        (
            "postgres://u@db/x?sslpassword=PW7&sslkey=k.pem&oauth_client_secret=PW8",
            "postgresql+psycopg://u@db/x?oauth_client_secret=***&sslkey=k.pem&sslpassword=***",
        ),
        (
            "postgresql://u@db/x?scram_client_key=PW7&scram_server_key=PW8",
            "postgresql+psycopg://u@db/x?scram_client_key=***&scram_server_key=***",
        ),
        ("postgresql://u@db/x?password=PW7&password=PW8", "postgresql+psycopg://u@db/x?password=***&password=***"),
        ("postgresql://u@db/x?pass%77ord=PW7", "postgresql+psycopg://u@db/x?password=***"),  # libpq decodes names too
        ("postgresql://u@db/x?Password=PW7", "postgresql+psycopg://u@db/x?Password=***"),  # refused, but not shown
        ("postgresql://u@db/x?application_name=password", "postgresql+psycopg://u@db/x?application_name=password"),
        (
            "postgresql://app:p@ss@db/x?sslmode=require&password=PW7",
            "postgresql://***@db/x?sslmode=require&password=***",
        ),
        ("postgresql://app:p@ss@db/x?pass%77ord=PW7&password", "postgresql://***@db/x?pass%77ord=***&password"),
    ],
)
def test_a_database_url_is_logged_without_any_of_its_password(url, logged):
    assert redacted(url) == logged
    assert "PW" not in redacted(url)


def test_an_unknown_log_level_is_refused_with_the_variable_named():
    for level in ("verbose", "notset", "warn", "fatal"):  # the last three: logging's own, not the README's
        refused("SAAS_LOG_LEVEL", level, "SAAS_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    assert Settings.from_env({**BASE, "SAAS_LOG_LEVEL": " warning "}).log_level == "WARNING"


@pytest.mark.parametrize("value", ["0", "2147483648", "99999999999"])
def test_the_message_size_fits_grpc_s_32_bit_int(value):
    refused("SAAS_MAX_MESSAGE_BYTES", value, "SAAS_MAX_MESSAGE_BYTES must be at")


def test_the_largest_message_size_grpc_takes_builds_a_server():
    import grpc

    settings = Settings.from_env({**BASE, "SAAS_MAX_MESSAGE_BYTES": "2147483647"})
    grpc.server(None, options=[("grpc.max_receive_message_length", settings.max_message_bytes)])


def test_call_records_that_move_no_money_commit_asynchronously_unless_turned_off():
    assert Settings.from_env(BASE).async_call_records is True
    assert Settings.from_env({**BASE, "SAAS_ASYNC_CALL_RECORDS": "false"}).async_call_records is False


@pytest.mark.parametrize(
    "name", ["SAAS_MIGRATE_ON_START", "SAAS_WEBHOOK_ALLOW_PRIVATE_TARGETS", "SAAS_ASYNC_CALL_RECORDS"]
)
def test_a_boolean_takes_only_its_documented_spellings(name):
    attribute = name.removeprefix("SAAS_").lower()
    for value, meant in [("true", True), (" YES ", True), ("1", True), ("On", True)]:
        assert getattr(Settings.from_env({**BASE, name: value}), attribute) is meant, value
    for value, meant in [("false", False), ("No", False), ("0", False), ("OFF", False)]:
        assert getattr(Settings.from_env({**BASE, name: value}), attribute) is meant, value
    for value in ("maybe", "fasle", "ture", "2", "y"):
        refused(name, value, f"{name} must be true or false")


def test_an_empty_value_means_the_default():
    names = [
        "LITELLM_BASE_URL",
        "SAAS_GRPC_HOST",
        "SAAS_GRPC_PORT",
        "SAAS_METRICS_HOST",
        "SAAS_METRICS_PORT",
        "SAAS_MIGRATE_ON_START",
        "SAAS_LOG_LEVEL",
        "SAAS_JOB_TTL_SECONDS",
        "SAAS_TRUSTED_PROXIES",
    ]
    for empty in ("", "  "):
        assert Settings.from_env({**BASE, **dict.fromkeys(names, empty)}) == Settings.from_env(BASE), repr(empty)
    assert Settings.from_env({**BASE, "SAAS_METRICS_PORT": ""}).metrics_port == 9464  # not off: only `off` is
    # docker-compose passes an unset secrets key as empty: webhooks off, as documented.
    assert Settings.from_env({**BASE, "SAAS_SECRETS_KEY": ""}).secrets_key == ""


def test_a_blank_secrets_key_is_refused_not_taken_for_unset():
    refused("SAAS_SECRETS_KEY", "   ", "SAAS_SECRETS_KEY is blank")
    refused("SAAS_SECRETS_KEY", "\t", "SAAS_SECRETS_KEY is blank")


def test_the_litellm_url_must_be_http():
    refused("LITELLM_BASE_URL", "litellm:8002", "LITELLM_BASE_URL must start with http:// or https://")


def test_trusted_proxies_are_loopback_unless_set():
    # make dev and the tests run Envoy and the servers on 127.0.0.1; a deployment sets its gateway's network.
    assert [str(n) for n in Settings.from_env(BASE).trusted_proxies] == ["127.0.0.0/8", "::1/128"]
    settings = Settings.from_env({**BASE, "SAAS_TRUSTED_PROXIES": " 10.0.0.0/8 , 192.0.2.7, fd00::/8 ,"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]
    assert Settings.from_env({**BASE, "SAAS_TRUSTED_PROXIES": " None "}).trusted_proxies == ()


@pytest.mark.parametrize(
    "value",
    ["envoy", "10.0.0.0/8 192.168.0.0/16", "10.0.0.0/8;127.0.0.1", "10.0.0.0/33", "300.0.0.1", "127.0.0.1:8003", "*"],
)
def test_a_malformed_trusted_proxies_list_is_refused_with_the_variable_named(value):
    refused(
        "SAAS_TRUSTED_PROXIES",
        f"127.0.0.1, {value}",
        rf"SAAS_TRUSTED_PROXIES must be IP addresses or CIDR ranges separated by commas .*, or none; got {re.escape(repr(value))}",
    )


def test_a_trusted_range_with_host_bits_is_refused_not_guessed_at():
    refused("SAAS_TRUSTED_PROXIES", "10.1.2.3/8", r"'10.1.2.3/8' has host bits set \(did you mean 10.0.0.0/8\?\)")
    refused("SAAS_TRUSTED_PROXIES", " , ", "SAAS_TRUSTED_PROXIES lists no address")


def test_a_previous_admin_key_is_optional_and_kept_out_of_repr():
    assert Settings.from_env(BASE).admin_key_previous == ""
    assert Settings.from_env({**BASE, "SAAS_ADMIN_KEY_PREVIOUS": "  "}).admin_key_previous == ""
    settings = Settings.from_env({**BASE, "SAAS_ADMIN_KEY_PREVIOUS": " sk-admin-old-0123456789 "})
    assert settings.admin_key_previous == "sk-admin-old-0123456789"
    assert "sk-admin-old" not in repr(settings) and BASE["SAAS_ADMIN_KEY"] not in repr(settings)


def test_a_previous_admin_key_follows_the_admin_key_s_rules():
    refused("SAAS_ADMIN_KEY_PREVIOUS", "short", "SAAS_ADMIN_KEY_PREVIOUS must be at least 16 characters")
    # The same key twice is a rotation half done: say so rather than accept it.
    refused("SAAS_ADMIN_KEY_PREVIOUS", BASE["SAAS_ADMIN_KEY"], "SAAS_ADMIN_KEY_PREVIOUS is the same as SAAS_ADMIN_KEY")


@pytest.mark.parametrize("name", ["SAAS_ADMIN_KEY", "SAAS_ADMIN_KEY_PREVIOUS"])
@pytest.mark.parametrize("key", ["clé-admin-0123456789", "admin-key-0123456789\u00a0x", "admin\tkey\x000123456789"])
def test_an_admin_key_that_cannot_travel_in_a_header_is_refused_without_echoing_it(name, key):
    with pytest.raises(SettingsError, match=f"{name} must be printable ASCII") as raised:
        Settings.from_env({**BASE, name: key})
    assert key.strip() not in str(raised.value)


def test_an_admin_key_of_printable_ascii_is_accepted_spaces_at_its_ends_dropped():
    settings = Settings.from_env({**BASE, "SAAS_ADMIN_KEY": " Op3rator key!@#$%^&*()_+-=[]{}~ \n"})
    assert settings.admin_key == "Op3rator key!@#$%^&*()_+-=[]{}~"


def test_the_prometheus_multiprocess_dir_must_be_a_directory_the_server_can_write(tmp_path):
    # Missing, or a file: prometheus_client failed at import, with a traceback and exit 1.
    refused("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"), "PROMETHEUS_MULTIPROC_DIR must be an existing")
    (tmp_path / "a-file").write_text("")
    refused("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "a-file"), "PROMETHEUS_MULTIPROC_DIR must be an existing")
    assert Settings.from_env({**BASE, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).metrics_multiprocess_dir == str(
        tmp_path
    )


@pytest.mark.parametrize("name", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"])
def test_an_otlp_endpoint_must_be_http(name):
    # Without a scheme it was accepted, and every export then failed without a word.
    refused(name, "collector:4318", f"{name} must start with http:// or https://")


def test_the_traces_endpoint_is_the_otlp_endpoint_s_unless_set_apart():
    assert Settings.from_env(BASE).otlp_traces_endpoint == ""
    general = {**BASE, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert Settings.from_env(general).otlp_traces_endpoint == "http://collector:4318/v1/traces"
    traces = {**general, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/v1/traces"}
    assert Settings.from_env(traces).otlp_traces_endpoint == "https://traces.example/v1/traces"


def test_a_choice_is_taken_in_any_case():
    # SAAS_RECORD_CONTENT=ALL was refused, though SAAS_LOG_FORMAT=JSON was taken.
    assert Settings.from_env({**BASE, "SAAS_RECORD_CONTENT": " ALL "}).record_content == "all"
    assert Settings.from_env({**BASE, "SAAS_RECORD_CONTENT": "None"}).record_content == "none"
    assert Settings.from_env({**BASE, "SAAS_LOG_FORMAT": "Text"}).log_format == "text"
    refused("SAAS_RECORD_CONTENT", "everything", "SAAS_RECORD_CONTENT must be none, partial or all")


@pytest.mark.parametrize("value", ["none", "no", "0", "99999"])
def test_a_metrics_port_that_is_refused_mentions_off(value):
    refused("SAAS_METRICS_PORT", value, "SAAS_METRICS_PORT must be .*; or off, for no metrics endpoint")
