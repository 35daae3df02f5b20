"""Settings, read once from the environment."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from sqlalchemy.engine import make_url

DEFAULT_DATABASE_FILE = "mazkira.db"


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    redis_url: str | None = None
    # Sessions end after this much inactivity, and in any case after the absolute lifetime.
    session_idle_minutes: int = 60 * 8
    session_absolute_hours: int = 24 * 7
    # Set when the console is served over https, so cookies carry the Secure flag.
    https: bool = False
    # Hops whose X-Forwarded-For we believe; anything else is the client itself.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    max_body_bytes: int = 1_000_000
    default_locale: str = "he"
    login_attempts_per_account: int = 5
    login_attempts_per_address: int = 30
    login_window_minutes: int = 15
    # A quiet websocket checks its session this often (logout and deactivation also close it
    # at once through the hub; this is the backstop).
    live_revalidate_seconds: float = 20.0
    # A connection must send a request's whole head (request line and headers) within this
    # many seconds of opening or of starting it, else it is closed (asgi.HeaderDeadline).
    header_timeout_seconds: int = 20
    # Templates re-read when their files change (development only: a stat() per template on
    # every render).
    templates_reload: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # Outbound notifications; a channel whose settings are missing fails its messages clearly.
    smtp_url: str | None = None  # smtp://user:pass@host:port?from=agency@example.com
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None  # the agency's sending number, E.164
    twilio_api_url: str = "https://api.twilio.com"
    whatsapp_access_token: str | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_url: str = "https://graph.facebook.com"
    # Provider URLs on loopback or private networks are refused unless this is set (tests, fakes).
    allow_private_provider_urls: bool = False
    # `mazkira demo`: a channel with no provider delivers to the console's outbox (/demo/outbox).
    demo_mode: bool = False
    # Outbound webhooks to loopback or private addresses are refused unless this is set.
    webhook_allow_private: bool = False
    # Inbound webhooks: the address the providers call (so Twilio's signature over the URL checks
    # out behind a proxy), and the secrets they sign with (unset: see `twilio_webhook_token`).
    public_url: str | None = None
    whatsapp_app_secret: str | None = None
    whatsapp_verify_token: str | None = None
    email_webhook_signing_key: str | None = None
    # Where an incoming call rings (the agency's switchboard, E.164); without it the caller
    # leaves a message and the call becomes a call-back lead.
    twilio_voice_forward_to: str | None = None
    # The phone in the console (deploy/sip): the secret shared with the SIP server (unset: no
    # phone, calls come as today), the WebSocket URL browsers register at, the SIP domain of the
    # secretaries' addresses, and how long a browser's credentials last.
    sip_secret: str | None = None
    sip_ws_url: str | None = None
    sip_domain: str = "mazkira.invalid"
    sip_credentials_seconds: int = 3600
    # The approved WhatsApp template (without variables) a secretary may send once more than
    # 24 hours passed since the contact last wrote, as "name:language", e.g. "follow_up:he".
    whatsapp_reply_template: str | None = None
    # The approved WhatsApp template whose body is one variable, {{1}}, that carries a message to
    # a contact (an appointment's notice, a survey link) once the 24-hours window is shut, as
    # "name:language"; without it those go as the reply template, which cannot carry them.
    whatsapp_message_template: str | None = None
    # Web-form intake per minute, per business key and per client address (0: no limit).
    intake_rate_per_key: int = 600
    intake_rate_per_address: int = 60
    # Provider webhooks (Twilio, Meta, Mailgun) come in bursts from the providers' own addresses,
    # so they are never counted; an address that sends this many bad signatures in a minute is
    # refused (429) for the rest of that minute (0: never).
    webhook_bad_signatures_per_address: int = 20
    # JSON API calls per minute per token (0: no limit).
    api_rate_per_token: int = 600
    # A call log with nothing typed for this long stops its timer and asks her to wrap up; the
    # time after it is never counted as talk (console/leads/calls.py).
    call_idle_minutes: int = 15
    # `/metrics` answers only a bearer of this token (unset: no such page); log lines as text
    # for a person or as JSON for a collector.
    metrics_token: str | None = None
    log_format: str = "text"
    # Web Push: the contact the push services see in the VAPID token (a mailto: or https URL;
    # unset: PUBLIC_URL), and the one origin whose push endpoints may be plain http on this
    # machine (a local push service in tests; never set in production).
    push_contact: str | None = None
    push_test_origin: str | None = None
    # Where call recordings and voicemail are kept, once each (console/base/storage.py): a
    # folder (the embedded mode) or an S3-compatible bucket (for scale; the endpoint for a
    # non-AWS server, credentials from these or boto3's usual chain). Neither: no recording.
    recordings_dir: str | None = None
    recordings_s3_bucket: str | None = None
    recordings_s3_endpoint: str | None = None
    recordings_s3_region: str = "us-east-1"
    recordings_s3_key_id: str | None = None
    recordings_s3_secret: str | None = None
    # rtpengine, as Mazkira reaches it for voicemail and recording: its control (ng) address
    # "host:port", and the folder its --recording-dir is as this process sees it.
    rtpengine_ng: str | None = None
    rtpengine_recording_dir: str | None = None

    @property
    def call_idle(self) -> timedelta:
        return timedelta(minutes=self.call_idle_minutes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    # The secrets inbound webhooks are checked with. One left unset is derived from SECRET_KEY,
    # so the demo and `mazkira simulate` work with nothing configured; a real provider signs
    # with its own secret and is refused until that secret is set.
    @property
    def twilio_webhook_token(self) -> str:
        return self.twilio_auth_token or derived_secret(self.secret_key, "twilio-auth-token")

    @property
    def whatsapp_webhook_secret(self) -> str:
        return self.whatsapp_app_secret or derived_secret(self.secret_key, "whatsapp-app-secret")

    @property
    def email_webhook_key(self) -> str:
        return self.email_webhook_signing_key or derived_secret(
            self.secret_key, "email-webhook-signing-key"
        )

    @property
    def contact_whatsapp_template(self) -> str | None:
        """The template for a message to a contact outside the window: the message template
        with the text as its variable ("name:language:body") when there is one, else the
        reply template."""
        if self.whatsapp_message_template:
            return f"{self.whatsapp_message_template}:body"
        return self.whatsapp_reply_template

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        database_url = normalise_database_url(
            env.get("DATABASE_URL") or f"sqlite:///{Path.cwd() / DEFAULT_DATABASE_FILE}"
        )
        return cls(
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or stored_secret_key(database_url),
            session_idle_minutes=_int(env, "SESSION_IDLE_MINUTES", 60 * 8),
            session_absolute_hours=_int(env, "SESSION_ABSOLUTE_HOURS", 24 * 7),
            https=env.get("HTTPS", "").lower() in {"1", "true", "yes"},
            trusted_proxies=_networks(env.get("TRUSTED_PROXIES", "")),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_000_000),
            live_revalidate_seconds=_int(env, "LIVE_REVALIDATE_SECONDS", 20),
            header_timeout_seconds=_int(env, "HEADER_TIMEOUT_SECONDS", 20),
            templates_reload=_flag(env, "TEMPLATES_RELOAD"),
            smtp_url=env.get("SMTP_URL") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from=env.get("TWILIO_FROM") or None,
            twilio_api_url=env.get("TWILIO_API_URL") or "https://api.twilio.com",
            whatsapp_access_token=env.get("WHATSAPP_ACCESS_TOKEN") or None,
            whatsapp_phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID") or None,
            whatsapp_api_url=env.get("WHATSAPP_API_URL") or "https://graph.facebook.com",
            allow_private_provider_urls=_flag(env, "ALLOW_PRIVATE_PROVIDER_URLS"),
            demo_mode=_flag(env, "DEMO_MODE"),
            webhook_allow_private=_flag(env, "WEBHOOK_ALLOW_PRIVATE"),
            public_url=(env.get("PUBLIC_URL") or "").rstrip("/") or None,
            whatsapp_app_secret=env.get("WHATSAPP_APP_SECRET") or None,
            whatsapp_verify_token=env.get("WHATSAPP_VERIFY_TOKEN") or None,
            email_webhook_signing_key=env.get("EMAIL_WEBHOOK_SIGNING_KEY") or None,
            twilio_voice_forward_to=env.get("TWILIO_VOICE_FORWARD_TO") or None,
            sip_secret=env.get("SIP_SECRET") or None,
            sip_ws_url=env.get("SIP_WS_URL") or None,
            sip_domain=env.get("SIP_DOMAIN") or "mazkira.invalid",
            sip_credentials_seconds=_int(env, "SIP_CREDENTIALS_SECONDS", 3600),
            whatsapp_reply_template=env.get("WHATSAPP_REPLY_TEMPLATE") or None,
            whatsapp_message_template=env.get("WHATSAPP_MESSAGE_TEMPLATE") or None,
            intake_rate_per_key=_int(env, "INTAKE_RATE_PER_KEY", 600),
            intake_rate_per_address=_int(env, "INTAKE_RATE_PER_ADDRESS", 60),
            webhook_bad_signatures_per_address=_int(env, "WEBHOOK_BAD_SIGNATURES_PER_ADDRESS", 20),
            api_rate_per_token=_int(env, "API_RATE_PER_TOKEN", 600),
            call_idle_minutes=max(1, _int(env, "CALL_IDLE_MINUTES", 15)),
            metrics_token=env.get("METRICS_TOKEN") or None,
            log_format=_choice(env, "LOG_FORMAT", ("text", "json")),
            push_contact=env.get("PUSH_CONTACT") or None,
            push_test_origin=(env.get("PUSH_TEST_ORIGIN") or "").rstrip("/") or None,
            recordings_dir=env.get("RECORDINGS_DIR") or None,
            recordings_s3_bucket=env.get("RECORDINGS_S3_BUCKET") or None,
            recordings_s3_endpoint=env.get("RECORDINGS_S3_ENDPOINT") or None,
            recordings_s3_region=env.get("RECORDINGS_S3_REGION") or "us-east-1",
            recordings_s3_key_id=env.get("RECORDINGS_S3_KEY_ID") or None,
            recordings_s3_secret=env.get("RECORDINGS_S3_SECRET") or None,
            rtpengine_ng=env.get("RTPENGINE_NG") or None,
            rtpengine_recording_dir=env.get("RTPENGINE_RECORDING_DIR") or None,
        )


def normalise_database_url(url: str) -> str:
    """Accept the plain URLs people type and pick the async driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ConfigError(f"DATABASE_URL must be a sqlite:// or postgresql:// URL, not {url!r}")


def derived_secret(secret_key: str, label: str) -> str:
    """A secret of its own for `label`, made from SECRET_KEY (hex HMAC-SHA256)."""
    return hmac.new(secret_key.encode(), f"mazkira:{label}".encode(), hashlib.sha256).hexdigest()


def stored_secret_key(database_url: str) -> str:
    """The SQLite deployment keeps a generated key in a file beside its database."""
    database = make_url(database_url).database
    if not database_url.startswith("sqlite") or not database or database == ":memory:":
        raise ConfigError("SECRET_KEY must be set when the database is not a SQLite file")
    path = Path(database).with_suffix(".secret")
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when unset), in any case."""
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def _flag(env: dict[str, str], name: str) -> bool:
    return env.get(name, "").lower() in {"1", "true", "yes"}


def _networks(raw: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as error:
        raise ConfigError(f"TRUSTED_PROXIES: {error}") from None
