"""AltegioResource builds the client's retry and timeout policies whole, from its tuning fields."""

from pathlib import Path

import pytest

from assets.resources import AltegioResource
from pipelines.altegio.http import DEFAULT_RATE_LIMIT, ConfigurationError, RetryPolicy, Timeouts

API = "https://api.example.test/api/v1"


def resource(**fields: str) -> AltegioResource:
    return AltegioResource(base_url=API, partner_token="p", user_token="u", **fields)


def test_untuned_settings_carry_the_default_policies(tmp_path: Path) -> None:
    settings = resource().settings(tmp_path)
    assert settings.retry == RetryPolicy()
    assert settings.timeouts == Timeouts()
    assert settings.rate_limit == DEFAULT_RATE_LIMIT


def test_tuning_replaces_only_the_tuned_fields(tmp_path: Path) -> None:
    settings = resource(read_timeout_s="0.25", backoff_base_s="0.05").settings(tmp_path)
    assert settings.timeouts == Timeouts(read_s=0.25)
    assert settings.retry == RetryPolicy(backoff_base_s=0.05)
    assert settings.retry.max_elapsed_s == RetryPolicy().max_elapsed_s


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("read_timeout_s", "soon", "read_timeout_s must be seconds"),
        ("backoff_base_s", "0", "backoff_base_s must be greater than 0"),
        ("rate_limit", "-1", "ALTEGIO_RATE_LIMIT must be greater than 0"),
    ],
)
def test_bad_tuning_is_a_configuration_error_naming_the_field(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        resource(**{field: value}).settings(tmp_path)
    assert str(info.value).startswith(message.split(" ")[0])  # no class name, no brackets
