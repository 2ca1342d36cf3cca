"""Notification settings from TOML and the environment; channel pieces that need no server."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import inspect
from pathlib import Path

import pytest

from engine import InputError
from notifications import (
    NotificationConfig,
    RelayConfig,
    SmtpConfig,
    WebhookConfig,
    default_channels,
    load_config,
    verify_signature,
)
from notifications.channels import CHANNELS, Delivery, DeliveryError
from notifications.channels.email import build_message, message_id
from notifications.channels.webhook import sign

TOML = """\
[smtp]
host = "smtp.zzgh.example"
port = 587
sender = "漳州市总工会 <noreply@zzgh.example>"
username = "noreply"
password = "from-file"
starttls = true
timeout = 12.5

[webhook]
url = "https://hooks.zzgh.example/casework"
secret = "file-secret"

[relay]
max_attempts = 5
base_delay = 10
max_delay = 600
lease = 60
batch = 20
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "casework.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./casework.toml here
    config = load_config(env={})
    assert config == NotificationConfig()
    assert config.relay == RelayConfig(max_attempts=8, base_delay=30, max_delay=3600, lease=120, batch=100)
    assert config.smtp.missing() == "email is not configured: set CASEWORK_SMTP_HOST or [smtp] host in casework.toml"
    assert config.webhook.missing() == (
        "webhook is not configured: set CASEWORK_WEBHOOK_URL or [webhook] url in casework.toml"
    )


def test_file_is_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, TOML), env={})
    assert config.smtp == SmtpConfig(
        host="smtp.zzgh.example",
        port=587,
        sender="漳州市总工会 <noreply@zzgh.example>",
        username="noreply",
        password="from-file",
        starttls=True,
        ssl=False,
        timeout=12.5,
    )
    assert config.webhook == WebhookConfig(url="https://hooks.zzgh.example/casework", secret="file-secret")
    assert config.relay == RelayConfig(max_attempts=5, base_delay=10, max_delay=600, lease=60, batch=20)
    assert config.smtp.missing() is None and config.webhook.missing() is None
    assert "from-file" not in repr(config) and "file-secret" not in repr(config)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "CASEWORK_SMTP_HOST": "mail.internal",
        "CASEWORK_SMTP_PORT": "2525",
        "CASEWORK_SMTP_USER": "relay",
        "CASEWORK_SMTP_PASSWORD": "from-env",
        "CASEWORK_SMTP_STARTTLS": "no",
        "CASEWORK_SMTP_SSL": "YES",
        "CASEWORK_WEBHOOK_SECRET": "env-secret",
        "CASEWORK_WEBHOOK_TIMEOUT": "3",
        "CASEWORK_RELAY_MAX_ATTEMPTS": "2",
        "CASEWORK_RELAY_BATCH": " 7 ",
        "CASEWORK_SMTP_SENDER": "",  # empty: ignored, the file's value stays
    }
    config = load_config(write(tmp_path, TOML), env=env)
    assert (config.smtp.host, config.smtp.port, config.smtp.username, config.smtp.password) == (
        "mail.internal",
        2525,
        "relay",
        "from-env",
    )
    assert (config.smtp.starttls, config.smtp.ssl) == (False, True)
    assert config.smtp.sender == "漳州市总工会 <noreply@zzgh.example>"
    assert (config.webhook.url, config.webhook.secret, config.webhook.timeout) == (
        "https://hooks.zzgh.example/casework",
        "env-secret",
        3.0,
    )
    assert (config.relay.max_attempts, config.relay.batch, config.relay.lease) == (2, 7, 60)


def test_file_from_casework_config_then_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "notify.toml").write_text("[relay]\nbatch = 3\n", encoding="utf-8")
    write(tmp_path, "[relay]\nbatch = 4\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(env={"CASEWORK_CONFIG": str(elsewhere / "notify.toml")}).relay.batch == 3
    assert load_config(env={}).relay.batch == 4
    with pytest.raises(InputError, match="no configuration file"):
        load_config(env={"CASEWORK_CONFIG": str(tmp_path / "missing.toml")})


def test_default_ports_follow_the_mode() -> None:
    assert SmtpConfig(host="h").effective_port == 25
    assert SmtpConfig(host="h", starttls=True).effective_port == 587
    assert SmtpConfig(host="h", ssl=True).effective_port == 465
    assert SmtpConfig(host="h", ssl=True, port=2465).effective_port == 2465


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[smtp]\nport = 70000\n", {}, r"\[smtp\] port must be a whole number from 1 to 65535, not 70000"),
        ("[smtp]\nport = true\n", {}, r"\[smtp\] port must be a whole number"),
        ("", {"CASEWORK_SMTP_PORT": "smtp"}, "CASEWORK_SMTP_PORT must be a whole number from 1 to 65535, not 'smtp'"),
        ("", {"CASEWORK_SMTP_STARTTLS": "maybe"}, "CASEWORK_SMTP_STARTTLS must be true or false, not 'maybe'"),
        ('[smtp]\nstarttls = "yes"\n', {}, None),  # text in TOML is accepted like the environment's
        ("[smtp]\nhost = 5\n", {}, r"\[smtp\] host must be text, not 5"),
        ('[smtp]\nsender = "noreply"\n', {}, r"\[smtp\] sender must be an address such as"),
        ("[smtp]\nssl = true\nstarttls = true\n", {}, "smtp ssl and starttls are exclusive"),
        ('[smtp]\npassword = "x"\n', {}, "smtp password is set but username is not"),
        ('[smtp]\nhots = "x"\n', {}, r"unknown key 'hots' in \[smtp\]; did you mean 'host'\?"),
        ('[smpt]\nhost = "x"\n', {}, r"unknown section \[smpt\]; did you mean 'smtp'\?"),
        ("smtp = 1\n", {}, r"smtp must be a section \(\[smtp\]\), not a value"),
        ('[webhook]\nurl = "ftp://x"\n', {}, r"\[webhook\] url must be an http:// or https:// URL"),
        ("", {"CASEWORK_WEBHOOK_TIMEOUT": "0"}, "CASEWORK_WEBHOOK_TIMEOUT must be a number of seconds greater than 0"),
        ("", {"CASEWORK_RELAY_LEASE": "nan"}, "CASEWORK_RELAY_LEASE must be a number of seconds"),
        ("", {"CASEWORK_RELAY_MAX_ATTEMPTS": "0"}, "CASEWORK_RELAY_MAX_ATTEMPTS must be a whole number from 1"),
        (
            "[relay]\nbase_delay = 60\nmax_delay = 30\n",
            {},
            r"max_delay \(30 s\) must not be less",
        ),
        ("[smtp\n", {}, "not valid TOML"),
    ],
)
def test_bad_values_are_refused_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str | None
) -> None:
    path = write(tmp_path, text)
    if message is None:
        load_config(path, env=env)
        return
    with pytest.raises(InputError, match=message) as info:
        load_config(path, env=env)
    assert "\n" not in str(info.value)


def test_registry_builds_every_channel() -> None:
    channels = default_channels(NotificationConfig())
    assert set(channels) == {"inbox", "email", "webhook", "console"} == {c.name for c in CHANNELS}
    assert [name for name, c in channels.items() if c.transactional] == ["inbox"]
    # implementations inherit the contract's documentation
    for cls in CHANNELS:
        assert cls.deliver.__doc__ is None
        assert "Raises:" in (inspect.getdoc(cls.deliver) or "")


# -------------------------------------------------------------- email, webhook


def delivery(**over: object) -> Delivery:
    fields: dict[str, object] = {
        "outbox_id": 1,
        "key": "7:3:0:email:lin@zzgh.example",
        "kind": "message",
        "channel": "email",
        "recipient": "lin@zzgh.example",
        "case_ref": "ZZ-2026-000001",
        "subject": "待审核：ZZ-2026-000001（陈*强）" * 3,
        "text": "林*，您好：\n请审核。",
        "html": "<p>林*，您好：</p>",
        "context": {},
        "created_at": dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC),
    }
    fields.update(over)
    return Delivery(**fields)  # type: ignore[arg-type]


def test_message_is_7bit_with_deterministic_ids() -> None:
    sender = "漳州市总工会 <noreply@zzgh.example>"
    raw = build_message(delivery(), sender).as_bytes()
    assert raw.isascii()
    assert raw == build_message(delivery(), sender).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == delivery().subject  # a long Chinese subject survives folding
    assert parsed["Message-ID"] == message_id(delivery().key, sender)
    assert parsed["Message-ID"].endswith("@zzgh.example>") and "lin" not in parsed["Message-ID"]
    assert message_id("other", sender) != parsed["Message-ID"]
    plain_only = email.message_from_bytes(build_message(delivery(html=None), sender).as_bytes())
    assert plain_only.get_content_type() == "text/plain"


def test_a_recipient_that_is_not_an_address_is_permanent() -> None:
    with pytest.raises(DeliveryError) as info:
        build_message(delivery(recipient="not an address"), "noreply@zzgh.example")
    assert info.value.permanent


def test_signature_scheme_as_documented() -> None:
    import hashlib
    import hmac

    body = '{"key":"1:2:0:webhook:webhook","subject":"待审核"}'.encode()
    header = sign("秘密", "1796000000", body)
    mac = hmac.new("秘密".encode(), b"1796000000." + body, hashlib.sha256)
    assert header == "sha256=" + mac.hexdigest()
    assert verify_signature("秘密", "1796000000", body, header)
    assert verify_signature("秘密", "1796000000", body, header, tolerance=300, now=1796000100)
    assert not verify_signature("秘密", "1796000000", body, header, tolerance=300, now=1796000400)
    assert not verify_signature("秘密", "1796000000", body, header.upper())
    assert not verify_signature("秘密", "1796000000", body, "sha256=")
    assert not verify_signature("秘密", "soon", body, header, tolerance=300)
