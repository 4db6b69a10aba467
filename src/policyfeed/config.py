"""Settings: defaults < policyfeed.toml < POLICYFEED_* environment < command-line flags.

Secrets (the SMTP password and the unsubscribe-token key) come only from the environment: they are
refused in the file, never stored in the database, and never shown by ``repr``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from policyfeed.errors import ConfigError

ENV_PREFIX = "POLICYFEED_"
DEFAULT_CONFIG_NAME = "policyfeed.toml"
SECRET_ENV = {
    "smtp_password": "POLICYFEED_SMTP_PASSWORD",
    "secret": "POLICYFEED_SECRET",
    "imap_password": "POLICYFEED_IMAP_PASSWORD",
    "dkim_private_key": "POLICYFEED_DKIM_PRIVATE_KEY",
    "preview_password": "POLICYFEED_PREVIEW_PASSWORD",
}
# Keys that would put a secret into the file: refused with the variable to use instead.
_SECRET_KEYS = {
    "password": "smtp_password",
    "smtp_password": "smtp_password",
    "secret": "secret",
    "imap_password": "imap_password",
    "private_key": "dkim_private_key",
    "key": "dkim_private_key",
    "preview_password": "preview_password",
}

# TOML section of each setting; the key inside the section is the field name, except for the
# sections in PREFIXED, whose keys drop the section's prefix (``[smtp] host = …`` sets
# ``smtp_host``, ``[dkim] selector = …`` sets ``dkim_selector``).
SECTIONS: dict[str, tuple[str, ...]] = {
    "site": (
        "title",
        "description",
        "base_url",
        "language",
        "timezone",
        "author",
        "author_email",
        "editor_email",
        "icon",
        "logo",
        "app_url",
    ),
    "build": ("output_dir", "feed_limit", "templates_dir", "websub_hub"),
    "digest": (
        "mail_from",
        "mail_from_name",
        "reply_to",
        "list_id",
        "postal_address",
        "schedule",
        "max_lateness",
        "outbox_dir",
        "unsubscribe_url",
        "bounce_address",
        "verp",
        "approval",
        "preview_url",
        "sync_before_publish",
    ),
    "smtp": (
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_username",
        "smtp_rate_limit",
        "smtp_timeout",
        "smtp_retries",
        "smtp_connections",
    ),
    "web": ("trusted_proxies", "connection_limit", "channel_timeout"),
    "bounces": (
        "bounces_mailbox",
        "bounces_processed_folder",
        "bounces_unmatched_folder",
        "bounces_soft_limit",
        "bounces_imap_ca_file",
        "bounces_webhook",
        "bounces_webhook_max_body",
        "bounces_sns_topic_arns",
        "bounces_sns_cert_hosts",
        "bounces_sns_ca_file",
    ),
    "dkim": ("dkim_domain", "dkim_selector", "dkim_key_file"),
    "signup": ("signup_enabled", "signup_consent_text", "signup_confirm_within"),
}
PREFIXED = ("smtp", "bounces", "dkim", "signup")
PATH_FIELDS = ("output_dir", "templates_dir", "outbox_dir")
SMTP_SECURITY = ("starttls", "tls", "none")
#: The most connections to one relay a run opens at once (smtp.connections).
MAX_SMTP_CONNECTIONS = 32
APPROVAL = ("none", "required")
#: Shorter passwords are refused: the preview shows drafts nobody outside may read yet.
MIN_PREVIEW_PASSWORD = 12
#: The shortest POLICYFEED_SECRET accepted: it signs every unsubscribe, confirmation and
#: preferences link, so a short one can be guessed and every member's links forged.
MIN_SECRET_LENGTH = 16


#: What a ``[[sources]]`` entry may say, with what each key must be.
SOURCE_KEYS = {
    "name": "a short name of lower-case letters, digits and hyphens, like blog",
    "url": "the feed's absolute http(s) URL",
    "author": "one line of text (the author of items that name none)",
    "topics": 'a table of the feed\'s categories and the topic each is ("Misc" = "" drops one)',
    "add_topics": "a list of topic names (every post from the feed gets them)",
    "unmapped_topics": '"keep" or "drop" (categories the topics table does not name)',
    "timeout": "a number of seconds from 1 to 300 (how long a fetch may take)",
    "max_bytes": "a whole number of bytes, at least 1024 (the largest feed, decompressed)",
}
SOURCE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
SOURCE_DEFAULT_TIMEOUT = 30.0
SOURCE_DEFAULT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Source:
    """One ``[[sources]]`` entry: a blog whose feed ``policyfeed sources sync`` copies posts from.

    ``topics`` maps the feed's category names to topic names (an empty name drops the category);
    categories it does not name are kept as they are, or dropped when ``unmapped_topics`` is
    ``"drop"``; every post also gets ``add_topics``. ``author`` is for items that name none.
    """

    name: str
    url: str
    author: str = ""
    topics: tuple[tuple[str, str], ...] = ()
    add_topics: tuple[str, ...] = ()
    unmapped_topics: str = "keep"
    timeout: float = SOURCE_DEFAULT_TIMEOUT
    max_bytes: int = SOURCE_DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class Settings:
    """Everything policyfeed needs to know about a site; build with :func:`load_settings`."""

    title: str = "Policy blog"
    description: str = ""
    base_url: str = "http://127.0.0.1:8000/"
    language: str = "en"
    timezone: str = "UTC"
    author: str = ""
    author_email: str = ""
    editor_email: str = ""
    icon: str = ""
    logo: str = ""
    #: Where the WSGI app's endpoints are (/subscribe, /unsubscribe, …); empty: base_url.
    app_url: str = ""
    output_dir: Path = Path("public")
    feed_limit: int = 50
    templates_dir: Path | None = None
    websub_hub: str = ""
    mail_from: str = ""
    mail_from_name: str = ""
    reply_to: str = ""
    list_id: str = ""
    postal_address: str = ""
    schedule: str = "0 8 * * MON"
    max_lateness: str = "2d"
    outbox_dir: Path = Path("outbox")
    unsubscribe_url: str = ""
    signup_enabled: bool = True
    #: What a reader agrees to by signing up (shown by the forms, kept in the consent record);
    #: empty: a sentence naming the site.
    signup_consent_text: str = ""
    signup_confirm_within: str = "7d"
    approval: str = "none"
    preview_url: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_rate_limit: float = 0.0
    smtp_timeout: float = 30.0
    smtp_retries: int = 3
    #: Connections to the relay at once during a digest's delivery (one rate limit for all).
    smtp_connections: int = 1
    trusted_proxies: int = 0
    connection_limit: int = 1000
    channel_timeout: int = 30
    bounce_address: str = ""
    verp: bool = True
    sync_before_publish: bool = False
    bounces_mailbox: str = ""
    bounces_processed_folder: str = "Processed"
    bounces_unmatched_folder: str = "Unmatched"
    bounces_soft_limit: int = 3
    bounces_imap_ca_file: Path | None = None
    bounces_webhook: str = ""
    bounces_webhook_max_body: int = 1024 * 1024
    bounces_sns_topic_arns: str = ""
    bounces_sns_cert_hosts: str = ""
    bounces_sns_ca_file: Path | None = None
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_key_file: Path | None = None
    smtp_password: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    imap_password: str = field(default="", repr=False)
    dkim_private_key: str = field(default="", repr=False)
    preview_password: str = field(default="", repr=False)
    #: The ``[[sources]]`` of the file: other blogs' feeds that ``sources sync`` copies posts from.
    sources: tuple[Source, ...] = ()

    # --- derived values -------------------------------------------------------------------
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def domain(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @property
    def max_lateness_delta(self) -> timedelta:
        return parse_duration(self.max_lateness)

    @property
    def sender(self) -> str:
        return self.mail_from or f"newsletter@{self.domain}"

    @property
    def bounce_mailbox_address(self) -> str:
        """The mailbox bounces go to (its VERP variants carry each delivery's token)."""
        return self.bounce_address or self.sender

    @property
    def dkim_enabled(self) -> bool:
        return bool(self.dkim_domain)

    @property
    def sns_topic_arns(self) -> tuple[str, ...]:
        return _split_list(self.bounces_sns_topic_arns)

    @property
    def sns_cert_hosts(self) -> tuple[str, ...]:
        return _split_list(self.bounces_sns_cert_hosts)

    @property
    def list_identifier(self) -> str:
        return self.list_id or f"digest.{self.domain}"

    @property
    def unsubscribe_endpoint(self) -> str:
        return self.unsubscribe_url or self.app_endpoint("unsubscribe")

    @property
    def confirm_within(self) -> timedelta:
        return parse_duration(self.signup_confirm_within)

    @property
    def consent_text(self) -> str:
        return " ".join(self.signup_consent_text.split()) or (
            f"I would like to receive the {self.title} digest by email. I can unsubscribe at "
            "any time with the link in every message."
        )

    def app_endpoint(self, path: str) -> str:
        """The absolute URL of one of the WSGI app's endpoints (``subscribe``, …)."""
        return (self.app_url or self.base_url) + path.lstrip("/")

    def absolute(self, path: str) -> str:
        """An absolute URL on the site for a path relative to its root."""
        return self.base_url + path.lstrip("/")


def _split_list(text: str) -> tuple[str, ...]:
    """A comma- or space-separated list setting as its items."""
    return tuple(item for item in re.split(r"[\s,]+", text) if item)


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Settings)}
_SECTION_OF = {name: section for section, names in SECTIONS.items() for name in names}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse ``90m``, ``12h``, ``2d``, ``1w`` into a timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use a number and s, m, h, d or w, e.g. 2d)")
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def toml_key(name: str) -> str:
    section = _SECTION_OF[name]
    key = name.removeprefix(f"{section}_") if section in PREFIXED else name
    return f"{section}.{key}"


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _coerce(name: str, value: Any, origin: str, base_dir: Path | None) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind in ("Path", "Path | None"):
            if value in ("", None):
                return None if kind == "Path | None" else Path(".")
            path = Path(str(value)).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            return path
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        wanted = {"int": "a whole number", "float": "a number", "bool": "true or false"}.get(
            str(kind), "text"
        )
        # The file's origin names the section already ("[smtp] timeout"); a variable's does not.
        key = toml_key(name)
        label = key.rsplit(".", 1)[-1] if origin.startswith("[") or "] " in origin else key
        raise ConfigError(f"{origin}: {label} must be {wanted}, not {value!r}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and check a policyfeed.toml; unknown sections or keys are errors that name them."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_config_text(text, path)


def parse_config_text(text: str, path: Path) -> dict[str, Any]:
    """The settings in the TOML ``text`` of the file ``path`` (named in errors)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    if "sources" in raw:
        values["sources"] = parse_sources(raw.pop("sources"), path)
    for section, table in raw.items():
        if not isinstance(table, dict) and section in _SECRET_KEYS:
            env = SECRET_ENV[_SECRET_KEYS[section]]
            raise ConfigError(
                f"{path}: {section}: secrets are read only from the environment ({env}); "
                "remove it from the file"
            )
        if not isinstance(table, dict) and section in _SECTION_OF:
            where = toml_key(section).replace(".", "] ", 1)
            raise ConfigError(f"{path}: {section} must be inside its section: [{where} = …")
        if not isinstance(table, dict) and section not in SECTIONS:
            raise ConfigError(
                f"{path}: {section} = … is outside any section, and no section has a key "
                f"{section!r} (sections: {', '.join(SECTIONS)})"
            )
        if section not in SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{section}] (known: {', '.join(SECTIONS)}) "
                "(feeds to sync are [[sources]], one table per feed)"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section} must be a table ([{section}])")
        for key, value in table.items():
            name = f"{section}_{key}" if section in PREFIXED else key
            if key in _SECRET_KEYS and (key not in ("key", "private_key") or section == "dkim"):
                env = SECRET_ENV[_SECRET_KEYS[key]]
                raise ConfigError(
                    f"{path}: [{section}] {key}: secrets are read only from the environment "
                    f"({env}); remove it from the file"
                )
            if name not in SECTIONS[section]:
                raise ConfigError(
                    f"{path}: unknown key {key!r} in [{section}] "
                    f"(known: {', '.join(toml_key(n).split('.', 1)[1] for n in SECTIONS[section])})"
                )
            values[name] = _coerce(name, value, f"{path}: [{section}] {key}", path.parent)
    return values


#: POLICYFEED_* variables that are not settings but are read all the same.
OTHER_ENV = ("POLICYFEED_DB", "POLICYFEED_CONFIG")


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """A warning for each POLICYFEED_* variable that is no setting (a typo is otherwise ignored
    without a word), naming the close match if there is one."""
    import difflib

    known = {ENV_PREFIX + name.upper() for name in _SECTION_OF}
    known |= set(SECRET_ENV.values()) | set(OTHER_ENV)
    warnings = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{name} is not a policyfeed setting{hint}; it is ignored")
    return warnings


def parse_sources(raw: Any, path: Path) -> tuple[Source, ...]:
    """The ``[[sources]]`` of a config file, each checked; an error names the source (by its
    name, else its position) and the key."""
    if isinstance(raw, dict):
        raise ConfigError(
            f"{path}: sources are written [[sources]] (two brackets), one table per feed"
        )
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: sources must be [[sources]] tables, one per feed")
    sources: list[Source] = []
    seen: dict[str, int] = {}
    for number, table in enumerate(raw, start=1):
        where = f"{path}: [[sources]] #{number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table of keys")
        name = table.get("name")
        if isinstance(name, str) and name:
            where = f"{path}: [[sources]] {name!r}"
        source = _parse_source(table, where)
        if source.name in seen:
            raise ConfigError(
                f"{where}: the name is also the name of [[sources]] #{seen[source.name]}"
            )
        seen[source.name] = number
        sources.append(source)
    return tuple(sources)


def _parse_source(table: dict[str, Any], where: str) -> Source:
    unknown = sorted(set(table) - set(SOURCE_KEYS))
    if unknown:
        if any(key in _SECRET_KEYS or key in ("username", "token") for key in unknown):
            raise ConfigError(f"{where}: a feed that needs a login is not supported")
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(SOURCE_KEYS)})")

    def need(key: str, ok: bool) -> None:
        if not ok:
            raise ConfigError(f"{where}: {key} must be {SOURCE_KEYS[key]}, not {table[key]!r}")

    for key in ("name", "url"):
        if key not in table:
            raise ConfigError(f"{where}: {key} is missing ({SOURCE_KEYS[key]})")
    name, url = table["name"], table["url"]
    need("name", isinstance(name, str) and bool(SOURCE_NAME.match(name)))
    need("url", isinstance(url, str) and not _CONTROL.search(url))
    parts = urlsplit(url.strip())
    need("url", parts.scheme in ("http", "https") and bool(parts.hostname))
    author = table.get("author", "")
    need("author", isinstance(author, str) and not _LINE_BREAKING.search(author))
    mapping = table.get("topics", {})
    need("topics", isinstance(mapping, dict))
    for category, topic in mapping.items():
        if not isinstance(topic, str) or _LINE_BREAKING.search(topic):
            raise ConfigError(
                f'{where}: topics: {category!r} must map to a topic name (text, "" to drop it), '
                f"not {topic!r}"
            )
    added = table.get("add_topics", [])
    need(
        "add_topics",
        isinstance(added, list) and all(isinstance(t, str) and t.strip() for t in added),
    )
    unmapped = table.get("unmapped_topics", "keep")
    need("unmapped_topics", unmapped in ("keep", "drop"))
    timeout = table.get("timeout", SOURCE_DEFAULT_TIMEOUT)
    need(
        "timeout",
        isinstance(timeout, int | float) and not isinstance(timeout, bool) and 1 <= timeout <= 300,
    )
    max_bytes = table.get("max_bytes", SOURCE_DEFAULT_MAX_BYTES)
    need(
        "max_bytes",
        isinstance(max_bytes, int) and not isinstance(max_bytes, bool) and max_bytes >= 1024,
    )
    return Source(
        name=name,
        url=parts.geturl(),
        author=" ".join(author.split()),
        topics=tuple((str(k), " ".join(v.split())) for k, v in mapping.items()),
        add_topics=tuple(" ".join(t.split()) for t in added),
        unmapped_topics=unmapped,
        timeout=float(timeout),
        max_bytes=int(max_bytes),
    )


def load_settings(
    config_path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Merge defaults, the config file, POLICYFEED_* variables and flag ``overrides``.

    ``config_path`` None means ``policyfeed.toml`` in ``cwd`` if it exists.
    """
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    values: dict[str, Any] = {}
    if config_path is None:
        candidate = cwd / DEFAULT_CONFIG_NAME
        if candidate.exists():
            config_path = candidate
    if config_path is not None:
        values.update(read_config_file(config_path))
    for name in _SECTION_OF:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name], env_name, cwd)
    for name, env_name in SECRET_ENV.items():
        if environ.get(env_name):
            values[name] = environ[env_name]
    for name, value in (overrides or {}).items():
        if name not in _FIELD_TYPES:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce(name, value, f"option for {name}", cwd)
    for name in PATH_FIELDS:
        if name not in values and isinstance(getattr(Settings, name, None), Path):
            values[name] = cwd / getattr(Settings, name)
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Check values that have a shape; the message names the setting."""
    parts = urlsplit(settings.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"site.base_url must be an absolute http(s) URL, not {settings.base_url!r}"
        )
    if not settings.base_url.endswith("/"):
        object.__setattr__(settings, "base_url", settings.base_url + "/")
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"site.timezone: unknown time zone {settings.timezone!r} (e.g. Europe/Geneva)"
        ) from None
    if not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", settings.language):
        raise ConfigError(
            f"site.language must be a language tag like en or en-GB, not {settings.language!r}"
        )
    if settings.feed_limit < 1:
        raise ConfigError(f"build.feed_limit must be at least 1, not {settings.feed_limit}")
    if settings.smtp_security not in SMTP_SECURITY:
        raise ConfigError(
            f"smtp.security must be one of {', '.join(SMTP_SECURITY)}, "
            f"not {settings.smtp_security!r}"
        )
    if settings.smtp_rate_limit < 0:
        raise ConfigError("smtp.rate_limit must be 0 (no limit) or a positive number per second")
    _duration_setting(settings, "max_lateness")
    if not 1 <= settings.smtp_port <= 65535:
        raise ConfigError(
            f"smtp.port must be a port number from 1 to 65535, not {settings.smtp_port}"
        )
    if not 1 <= settings.smtp_connections <= MAX_SMTP_CONNECTIONS:
        raise ConfigError(
            f"smtp.connections must be from 1 to {MAX_SMTP_CONNECTIONS}, "
            f"not {settings.smtp_connections}"
        )
    if not 0 <= settings.trusted_proxies <= 10:
        raise ConfigError(
            "web.trusted_proxies must be the number of proxies in front of the web app "
            f"(0 to 10), not {settings.trusted_proxies}"
        )
    if settings.connection_limit < 10:
        raise ConfigError(
            f"web.connection_limit must be at least 10, not {settings.connection_limit}"
        )
    if settings.channel_timeout < 1:
        raise ConfigError(
            f"web.channel_timeout must be at least 1 second, not {settings.channel_timeout}"
        )
    if settings.app_url:
        app = urlsplit(settings.app_url)
        if app.scheme not in ("http", "https") or not app.netloc or not settings.app_url.isascii():
            raise ConfigError(
                f"site.app_url must be an absolute http(s) URL, not {settings.app_url!r}"
            )
        if not settings.app_url.endswith("/"):
            object.__setattr__(settings, "app_url", settings.app_url + "/")
    if _duration_setting(settings, "signup_confirm_within") < timedelta(hours=1):
        raise ConfigError("signup.confirm_within must be at least 1h (e.g. 7d)")
    if settings.secret:
        require_secret_length(settings.secret)
    _validate_mail_headers(settings)
    _validate_bounces(settings)
    _validate_dkim(settings)
    _validate_approval(settings)


def require_secret_length(secret: str) -> str:
    """``secret`` when it is long enough to sign links with; ConfigError otherwise."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"POLICYFEED_SECRET is too short ({len(secret)} characters): it must be at least "
            f'{MIN_SECRET_LENGTH} characters (make one with: python -c "import secrets; '
            'print(secrets.token_urlsafe(32))")'
        )
    return secret


def _duration_setting(settings: Settings, name: str) -> timedelta:
    """A duration setting read, or an error that names the setting."""
    try:
        return parse_duration(getattr(settings, name))
    except ConfigError as exc:
        raise ConfigError(f"{toml_key(name)}: {exc}") from None


def _validate_approval(settings: Settings) -> None:
    if settings.approval not in APPROVAL:
        raise ConfigError(
            f"digest.approval must be one of {', '.join(APPROVAL)}, not {settings.approval!r}"
        )
    if settings.approval == "required" and not settings.editor_email:
        raise ConfigError(
            'digest.approval = "required" needs site.editor_email: the address that gets each '
            'draft issue to approve (e.g. editor_email = "editor@example.org" in [site])'
        )
    if settings.preview_url:
        parts = urlsplit(settings.preview_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                "digest.preview_url must be the absolute http(s) URL of the editors' preview "
                f"(e.g. http://127.0.0.1:8000/preview/), not {settings.preview_url!r}"
            )
        if not settings.preview_url.endswith("/"):
            object.__setattr__(settings, "preview_url", settings.preview_url + "/")
        path = urlsplit(settings.preview_url).path
        if not path.endswith("/preview/"):
            meant = parts._replace(path=path + "preview/", query="", fragment="")
            raise ConfigError(
                "digest.preview_url must lead to the preview, whose address ends in /preview/ "
                f"(e.g. {meant.geturl()}), not {settings.preview_url!r}: the approval copy's "
                "links would open the public site instead"
            )
    if settings.preview_password and len(settings.preview_password) < MIN_PREVIEW_PASSWORD:
        raise ConfigError(
            f"POLICYFEED_PREVIEW_PASSWORD must be at least {MIN_PREVIEW_PASSWORD} characters "
            "long: the preview shows drafts (e.g. POLICYFEED_PREVIEW_PASSWORD=$(openssl rand "
            "-base64 18))"
        )


# Values that end up in mail headers: a line break in one would start a header of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is folded like a space
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_LIST_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)+")


def _validate_mail_headers(settings: Settings) -> None:
    for name in ("title", "mail_from_name"):
        if _LINE_BREAKING.search(getattr(settings, name)):
            raise ConfigError(f"{toml_key(name)} must be one line without control characters")
    for name in ("mail_from", "editor_email", "author_email"):
        value = getattr(settings, name)
        if value and not _PLAIN_ADDRESS.fullmatch(value):
            raise ConfigError(
                f"{toml_key(name)} must be a plain ASCII address like name@example.org, "
                f"not {value!r}"
            )
    if settings.reply_to:
        parse_address_list(settings.reply_to, toml_key("reply_to"))
    value = settings.unsubscribe_url
    if value and (not value.isascii() or _CONTROL.search(value)):
        raise ConfigError(
            f"digest.unsubscribe_url must be ASCII on one line without control characters, "
            f"not {value!r}"
        )
    if settings.list_id and not _LIST_ID.fullmatch(settings.list_id):
        raise ConfigError(
            "digest.list_id must be a dotted name like digest.example.org, "
            f"not {settings.list_id!r}"
        )


def parse_address_list(value: str, key: str) -> list[tuple[str, str]]:
    """``Équipe <team@example.org>, desk@example.org`` as (display name, address) pairs, read
    by the email package's header parser. A ConfigError naming ``key`` unless every entry is a
    plain ASCII address, with or without a display name (any text on one line)."""
    from email import policy

    if _CONTROL.search(value):
        raise ConfigError(f"{key} must be one line without control characters, not {value!r}")
    header = policy.default.header_factory("Reply-To", value)
    pairs: list[tuple[str, str]] = []
    for group in header.groups:
        if group.display_name is not None:
            raise ConfigError(f"{key}: a group ({group.display_name}: …;) is not an address list")
        for address in group.addresses:
            if not _PLAIN_ADDRESS.fullmatch(address.addr_spec):
                raise ConfigError(
                    f"{key} must list plain ASCII addresses like Name <name@example.org>, "
                    f"not {address.addr_spec!r}"
                )
            pairs.append((address.display_name, address.addr_spec))
    if header.defects or not pairs:
        raise ConfigError(
            f"{key} must be addresses like Name <name@example.org> (commas between them), "
            f"not {value!r}"
        )
    return pairs


#: The longest VERP token (``<delivery id>.<subscriber id>.<mac>``) and its "+": the local part of
#: a bounce address must leave room for it within SMTP's 64 octets.
VERP_ROOM = 36
WEBHOOKS = ("", "ses")
_DNS_LABELS = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _validate_bounces(settings: Settings) -> None:
    address = settings.bounce_address
    if address and not _PLAIN_ADDRESS.fullmatch(address):
        raise ConfigError(
            f"digest.bounce_address must be a plain ASCII address like bounces@example.org, "
            f"not {address!r}"
        )
    local = settings.bounce_mailbox_address.rpartition("@")[0]
    if settings.verp and len(local) + VERP_ROOM > 64:
        name = "digest.bounce_address" if address else "digest.mail_from"
        raise ConfigError(
            f"{name}: the part before @ ({local!r}) leaves no room for the bounce token "
            f"(at most {64 - VERP_ROOM} characters); set a shorter digest.bounce_address"
        )
    if settings.bounces_soft_limit < 1:
        raise ConfigError(
            f"bounces.soft_limit must be at least 1, not {settings.bounces_soft_limit}"
        )
    for name in ("bounces_processed_folder", "bounces_unmatched_folder"):
        folder = getattr(settings, name)
        if not folder or _CONTROL.search(folder) or "/" in folder or folder.startswith("."):
            raise ConfigError(
                f"{toml_key(name)} must be a folder name like Processed (no '/', not hidden), "
                f"not {folder!r}"
            )
    if settings.bounces_processed_folder == settings.bounces_unmatched_folder:
        raise ConfigError("bounces.processed_folder and bounces.unmatched_folder must differ")
    if settings.bounces_webhook not in WEBHOOKS:
        raise ConfigError(
            'bounces.webhook must be "ses" (Amazon SES through SNS) or empty (off), '
            f"not {settings.bounces_webhook!r}"
        )
    if settings.bounces_webhook == "ses" and not settings.sns_topic_arns:
        raise ConfigError(
            'bounces.webhook = "ses" needs bounces.sns_topic_arns: the ARN of the SNS '
            "topic(s) your SES notifications go to (arn:aws:sns:REGION:ACCOUNT:NAME)"
        )
    for arn in settings.sns_topic_arns:
        if not re.fullmatch(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]{1,256}", arn):
            raise ConfigError(f"bounces.sns_topic_arns: not an SNS topic ARN: {arn!r}")
    for host in settings.sns_cert_hosts:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
            raise ConfigError(f"bounces.sns_cert_hosts: not a host name: {host!r}")
    if settings.bounces_webhook_max_body < 1024:
        raise ConfigError(
            "bounces.webhook_max_body must be at least 1024 bytes, "
            f"not {settings.bounces_webhook_max_body}"
        )


def _validate_dkim(settings: Settings) -> None:
    if not (settings.dkim_domain or settings.dkim_selector or settings.dkim_key_file):
        return
    for name in ("dkim_domain", "dkim_selector"):
        value = getattr(settings, name)
        if not value:
            raise ConfigError(
                f"{toml_key(name)} is not set: DKIM signing needs [dkim] domain, selector and "
                "key_file (or POLICYFEED_DKIM_PRIVATE_KEY)"
            )
        if not _DNS_LABELS.fullmatch(value):
            raise ConfigError(f"{toml_key(name)} must be a DNS name, not {value!r}")
    if settings.dkim_key_file is None and not settings.dkim_private_key:
        raise ConfigError(
            "DKIM signing needs its private key: set dkim.key_file to the key's path or "
            "POLICYFEED_DKIM_PRIVATE_KEY to the key itself (never the key in this file)"
        )
    sender_domain = settings.sender.rpartition("@")[2].lower()
    domain = settings.dkim_domain.lower().rstrip(".")
    if sender_domain != domain and not sender_domain.endswith("." + domain):
        raise ConfigError(
            f"dkim.domain {settings.dkim_domain!r} is not aligned with the From address "
            f"{settings.sender}: DMARC passes only with d= the From domain or a parent of it"
        )


# Names that never resolve on the public Internet (RFC 6761's special-use names, and mDNS's
# .local, RFC 6762): no subscriber could follow a link on them.
_UNREACHABLE_SUFFIXES = {
    "localhost": "this machine",
    "local": "a name on the local network only",
    "invalid": "a name reserved never to resolve",
    "test": "a name reserved for testing",
    "example": "a name reserved for examples",
}


# Words people leave in an address they meant to change (the same as `policyfeed check`'s).
_PLACEHOLDER_WORDS = ("your-site", "yoursite", "your-domain", "yourdomain", "changeme",
                      "change-me", "placeholder", "replace-me")  # fmt: skip


def placeholder_reason(base_url: str) -> str:
    """Why ``base_url`` cannot be the public address of a site ("" when it can be): a
    loopback, unspecified or link-local address, a special-use name such as ``localhost`` or
    ``*.invalid``, or a placeholder word (``your-site``). The documentation domains
    (example.org, .com, .net) pass: they are real domains, and the demo site uses one."""
    import ipaddress

    host = (urlsplit(base_url).hostname or "").rstrip(".").lower()
    if any(word in host for word in _PLACEHOLDER_WORDS):
        return f"{host} is a placeholder"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        label = host.rsplit(".", 1)[-1]
        what = _UNREACHABLE_SUFFIXES.get(label)
        return f"{host} is {what}" if what else ""
    if address.is_loopback:
        return f"{host} is this machine's loopback address"
    if address.is_unspecified:
        return f"{host} is the unspecified address"
    if address.is_link_local:
        return f"{host} is a link-local address"
    return ""


def require_public_base_url(base_url: str, doing: str) -> None:
    """Refuse to ``doing`` (publish a post, make an issue…) while site.base_url is a loopback or
    placeholder address: posts get their permanent ids and links from it, and feed readers and
    sent digests keep those for good."""
    reason = placeholder_reason(base_url)
    if reason:
        raise ConfigError(
            f"site.base_url is {base_url} ({reason}): refusing to {doing}, because "
            "published posts take their permanent ids and links from it and feed readers and "
            "digests keep them. Set site.base_url in the config (or POLICYFEED_BASE_URL) to "
            "the site's public address, e.g. https://policy.example.org/"
        )


def check_config_text(text: str, path: Path) -> None:
    """Raise ConfigError if ``text`` would not be a valid config file at ``path``."""
    validate(Settings(**parse_config_text(text, path)))


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string, quotes included."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04X}", escaped) + '"'


DEFAULT_CONFIG_TEXT = """\
# policyfeed site configuration. Precedence: defaults < this file < POLICYFEED_* environment
# variables < command-line flags. Secrets (POLICYFEED_SMTP_PASSWORD, POLICYFEED_SECRET,
# POLICYFEED_PREVIEW_PASSWORD) are read only from the environment.

[site]
title = {title}
description = ""
base_url = {base_url}
language = "en"
timezone = "UTC"
author = ""
editor_email = ""

[build]
output_dir = "public"
feed_limit = 50
# templates_dir = "my-templates"   # your overrides; the defaults fill in the rest
# websub_hub = "https://pubsubhubbub.appspot.com/"

[digest]
# mail_from = "newsletter@example.org"
schedule = "0 8 * * MON"     # cron expression in site.timezone: one issue per period
max_lateness = "2d"
outbox_dir = "outbox"        # used when no [smtp] host is set
# approval = "required"      # publish makes a draft for site.editor_email to approve first
# preview_url = "http://127.0.0.1:8000/preview/"   # where editors open `policyfeed serve`'s preview

# [smtp]
# host = "smtp.example.org"
# port = 587
# security = "starttls"      # starttls | tls | none
# username = "newsletter"
# rate_limit = 10            # messages per second, 0 = no limit
# connections = 4            # connections at once for a digest (default 1)

# [web]                      # policyfeed serve (see docs/deploy.md)
# trusted_proxies = 1        # behind nginx or Caddy: believe the X-Forwarded-For it appends
"""
