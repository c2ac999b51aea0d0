"""Configuration as data: defaults, then a TOML file, then ``FHIR_FACADE_*`` variables, then flags.

With nothing configured the server serves the embedded demo database.
See README.md § Configuration for every key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "FHIR_FACADE_"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEMO_MAPPING = str(Path(__file__).resolve().parent.parent / "legacy_adapters" / "sources" / "demo" / "mapping.yaml")


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "fhir-facade"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    # [server]
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads: int = 4
    base_url: str | None = None  # public URL of /fhir (the tokens' issuer and audience); unset: http://<host>:<port>/fhir
    # [legacy]
    database_url: str | None = None  # None: the embedded demo (SQLite, created on first run)
    mapping: str = DEMO_MAPPING
    pool_size: int = 5
    statement_timeout: int = 30  # seconds a legacy statement may run (the database cancels it: 500 too-costly)
    network_timeout: int = 5  # seconds to connect, and to wait past a statement's time before a silent database is down (503)
    # [search]
    default_count: int = 20
    max_count: int = 1000
    strict_handling: bool = False  # unknown parameters: 400 instead of ignored-and-reported
    # [state]
    state_url: str | None = None  # the façade's own database (tokens, audit); None: SQLite in the data directory
    state_statement_timeout: int = 10  # seconds a state-database statement may run (network databases; network_timeout applies too)
    # [audit]
    audit_delivery: str = (
        "spool"  # spool: a worker-owned file before the response, shipped to the chain within 50 ms; commit: committed before the response
    )
    audit_spool_dir: str | None = None  # None: beside a SQLite state file, else in the data directory
    # [auth]
    auth_mode: str = (
        "builtin"  # builtin: our own SMART server; external: another IdP's tokens; off: no access control (only when set explicitly)
    )
    # built-in authorization server (facade/smart)
    signing_key_path: str | None = None  # PEM private key; None: generated for the embedded demo in the data directory
    token_lifetime: int = 300  # access-token lifetime in seconds
    refresh_token_lifetime: int = 90 * 24 * 3600  # offline_access refresh tokens (renewed on every use)
    users_file: str | None = None  # TOML list of users with hashed passwords; None: the demo users (demo only)
    clients_file: str | None = None  # TOML list of registered clients, besides `fhir-facade clients add`
    # external identity provider (resource-server mode)
    external_issuer: str | None = None  # external mode: the IdP's issuer (the tokens' iss)
    external_jwks_url: str | None = None  # external mode: where its signing keys are published
    introspection_url: str | None = None  # external mode, opaque tokens: its RFC 7662 endpoint
    introspection_client_id: str | None = None
    introspection_client_secret: str | None = None  # prefer FHIR_FACADE_INTROSPECTION_CLIENT_SECRET
    # [operations]
    log_format: str = "text"  # text | json (one JSON object per line, with the request id)
    metrics: bool = True  # Prometheus metrics at /metrics (or on metrics_port)
    metrics_port: int = 0  # 0: /metrics on the server's own port; else a separate port (firewall it)
    ready_audit_lag: int = 30  # seconds: /readyz fails when audit records wait longer than this to be shipped
    # [bulk] — $export (facade/bulk)
    bulk_dir: str | None = None  # where export files are written; None: "bulk" in the data directory
    bulk_expiry: int = 3600  # seconds a finished export's manifest and files are kept
    bulk_threads: int = 1  # exports running at once per host, whatever its worker processes (each holds one legacy connection)
    bulk_jobs_per_client: int = 2  # unfinished exports one client may have; more get 429
    bulk_file_bytes: int = 100 * 1024 * 1024  # an output file is closed and a new one started past this size
    bulk_page_size: int = 1000  # resources per SQL page (one statement each)
    bulk_checkpoint_seconds: float = 1.0  # an export records its position at most this often (and at each type's end)
    bulk_busy_share: float = 0.1  # share of the time an export runs while its process answers requests (1: flat out)
    bulk_database_url: str | None = None  # exports read this database (a read-only replica) instead of [legacy] database_url

    # [sandbox] the de-identified endpoint (docs/sandbox.md)
    sandbox: str = "auto"  # auto: on for the embedded demo only; on | off
    sandbox_path: str = "/sandbox/fhir"  # where it is served, beside /fhir
    sandbox_policy: str = "safe-harbor"  # a shipped policy (safe-harbor, limited-data-set) or a policy file
    sandbox_key_path: str | None = None  # hex key file; None: generated for the embedded demo in the data directory
    sandbox_key: str | None = None  # the key itself, hex (prefer FHIR_FACADE_SANDBOX_KEY)
    sandbox_small_cell: int = 11  # counts (total, _summary=count) from 1 to this minus one are withheld
    # [demo]
    demo_path: str = field(default_factory=lambda: str(data_home() / "demo.sqlite"))
    demo_patients: int = 1000

    @property
    def public_base_url(self) -> str:
        """The server's one identity: the configured ``base_url``, or the address it binds.
        Tokens name it as issuer and audience; links in responses start with it."""
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{_url_host(self.bind_host)}:{self.port}/fhir"

    @property
    def bind_host(self) -> str:
        """The address to listen on, without the brackets an IPv6 address may be written with."""
        return self.host[1:-1] if self.host.startswith("[") and self.host.endswith("]") else self.host

    @property
    def accepted_base_urls(self) -> tuple[str, ...]:
        """Base URLs a token or an app's ``aud`` may name: the identity, plus the loopback
        aliases when the identity is derived from a loopback (or any-address) bind, so a
        demo reached as localhost, 127.0.0.1 or [::1] is one server."""
        own = self.public_base_url
        if self.base_url or self.bind_host not in _LOOPBACK:
            return (own,)
        return (own, *(f"http://{_url_host(name)}:{self.port}/fhir" for name in _LOOPBACK if _url_host(name) not in own))

    @property
    def sandbox_enabled(self) -> bool:
        return self.sandbox == "on" or (self.sandbox == "auto" and self.is_demo)

    @property
    def sandbox_base_url(self) -> str:
        """The sandbox's identity (its tokens' audience; its links): ``sandbox_path`` beside /fhir."""
        return _sandbox_url(self.public_base_url, self.sandbox_path)

    @property
    def sandbox_base_urls(self) -> tuple[str, ...]:
        return tuple(_sandbox_url(url, self.sandbox_path) for url in self.accepted_base_urls)

    @property
    def sandbox_key_file(self) -> str | None:
        if self.sandbox_key_path:
            return self.sandbox_key_path
        return str(data_home() / "sandbox-key") if self.is_demo else None

    @property
    def state_database_url(self) -> str:
        return self.state_url or "sqlite:///" + str(data_home() / "state.sqlite")

    @property
    def bulk_directory(self) -> str:
        return self.bulk_dir or str(data_home() / "bulk")

    @property
    def signing_key_file(self) -> str | None:
        """Where the signing key lives: configured, or the demo's own key in the data directory."""
        if self.signing_key_path:
            return self.signing_key_path
        return str(data_home() / "signing-key.pem") if self.is_demo else None

    @property
    def is_demo(self) -> bool:
        return self.database_url is None

    def validate(self) -> Settings:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is out of range")
        if self.base_url is None and self.bind_host not in _LOOPBACK:
            # Clients elsewhere reach this server by a name it cannot know; tokens, links and the
            # OAuth endpoints' TLS rule all need it.
            raise ConfigError(f"listening on {self.host} serves other machines: set [server] base_url (or --base-url) to the URL they use")
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ConfigError(
                    f"base_url must be the public http(s) URL of /fhir, e.g. https://fhir.example.org/fhir, not {self.base_url!r}"
                )
        if self.workers < 1 or self.threads < 1:
            raise ConfigError("workers and threads must be at least 1")
        if not 1 <= self.default_count <= self.max_count:
            raise ConfigError("need 1 <= default_count <= max_count")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format must be text or json, not {self.log_format!r}")
        if self.metrics_port and not (0 < self.metrics_port < 65536 and self.metrics_port != self.port):
            raise ConfigError(f"metrics_port {self.metrics_port} must be a free port other than the server's own")
        if self.audit_delivery not in ("spool", "commit"):
            raise ConfigError(f"audit_delivery must be spool or commit, not {self.audit_delivery!r}")
        if self.auth_mode not in ("builtin", "external", "off"):
            raise ConfigError(f"auth_mode must be builtin, external or off, not {self.auth_mode!r}")
        if self.auth_mode == "external" and not (self.introspection_url or (self.external_issuer and self.external_jwks_url)):
            raise ConfigError("auth_mode external needs external_issuer and external_jwks_url, or introspection_url")
        if not 1 <= self.token_lifetime <= 3600:
            raise ConfigError("token_lifetime must be between 1 and 3600 seconds")
        if self.refresh_token_lifetime < 1:
            raise ConfigError("refresh_token_lifetime must be positive")
        if not (1 <= self.statement_timeout <= 3600 and 1 <= self.state_statement_timeout <= 3600 and 1 <= self.network_timeout <= 600):
            raise ConfigError("statement_timeout and state_statement_timeout take 1–3600 seconds, network_timeout 1–600")
        if self.bulk_expiry < 1 or self.bulk_threads < 0 or self.bulk_jobs_per_client < 1:
            raise ConfigError("bulk_expiry and bulk_jobs_per_client must be positive, bulk_threads at least 0")
        if self.bulk_file_bytes < 1024 or not 1 <= self.bulk_page_size <= 10_000:
            raise ConfigError("bulk_file_bytes must be at least 1024 and bulk_page_size between 1 and 10000")
        if not 0 <= self.bulk_checkpoint_seconds <= 60:
            raise ConfigError("bulk_checkpoint_seconds must be between 0 and 60")
        if not 0 < self.bulk_busy_share <= 1:
            raise ConfigError("bulk_busy_share must be above 0 and at most 1")
        if self.sandbox not in ("auto", "on", "off"):
            raise ConfigError(f"sandbox must be auto, on or off, not {self.sandbox!r}")
        path = self.sandbox_path
        if not path.startswith("/") or path.endswith("/") or path == "/fhir" or path.startswith("/fhir/") or "?" in path:
            raise ConfigError(f"sandbox_path must be a path of its own beside /fhir, e.g. /sandbox/fhir, not {path!r}")
        if self.sandbox_small_cell < 1:
            raise ConfigError("sandbox_small_cell must be at least 1")
        if self.sandbox_enabled and not (self.sandbox_key or self.sandbox_key_file):
            raise ConfigError("the sandbox needs its own key: set [sandbox] sandbox_key_path or FHIR_FACADE_SANDBOX_KEY")
        if self.demo_patients < 1:
            raise ConfigError("demo_patients must be at least 1")
        return self


_SECTIONS = {
    "server": ("host", "port", "workers", "threads", "base_url"),
    "legacy": ("database_url", "mapping", "pool_size", "statement_timeout", "network_timeout"),
    "search": ("default_count", "max_count", "strict_handling"),
    "state": ("state_url", "state_statement_timeout"),
    "audit": ("audit_delivery", "audit_spool_dir"),
    "operations": ("log_format", "metrics", "metrics_port", "ready_audit_lag"),
    "demo": ("demo_path", "demo_patients"),
    # [bulk] keys are written without the prefix: [bulk] database_url sets bulk_database_url.
    "bulk": (
        "bulk_dir",
        "bulk_expiry",
        "bulk_threads",
        "bulk_jobs_per_client",
        "bulk_file_bytes",
        "bulk_page_size",
        "bulk_checkpoint_seconds",
        "bulk_busy_share",
        "bulk_database_url",
    ),
    "sandbox": ("sandbox", "sandbox_path", "sandbox_policy", "sandbox_key_path", "sandbox_key", "sandbox_small_cell"),
    "auth": (
        "auth_mode",
        "signing_key_path",
        "token_lifetime",
        "refresh_token_lifetime",
        "users_file",
        "clients_file",
        "external_issuer",
        "external_jwks_url",
        "introspection_url",
        "introspection_client_id",
        "introspection_client_secret",
    ),
}
_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}") from None
    return None if value in ("", None) else str(value)


def load_settings(
    config_file: str | None = None, overrides: dict[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    values: dict[str, Any] = {}
    env: Mapping[str, str] = os.environ if environ is None else environ
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    if config_file:
        try:
            document = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration {config_file}: {exc}") from None
        for section, table in document.items():
            if section not in _SECTIONS or not isinstance(table, dict):
                raise ConfigError(f"{config_file}: unknown section [{section}]")
            for key, value in table.items():
                key = f"bulk_{key}" if section == "bulk" else key
                if key not in _SECTIONS[section]:
                    raise ConfigError(f"{config_file}: unknown key {key!r} in [{section}]")
                values[key] = _coerce(key, value)
        base = Path(config_file).resolve().parent
        for key in ("mapping", "signing_key_path", "users_file", "clients_file", "audit_spool_dir", "bulk_dir", "sandbox_key_path"):
            if values.get(key) and not Path(values[key]).is_absolute():
                values[key] = str(base / values[key])
    for name in _TYPES:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = _coerce(name, env_value)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, value)
    return replace(Settings(), **values).validate()


def _sandbox_url(fhir_base: str, path: str) -> str:
    """``https://host/prefix/fhir`` → ``https://host/prefix`` + ``path``."""
    root = fhir_base[: -len("/fhir")] if fhir_base.endswith("/fhir") else fhir_base.rstrip("/")
    return root + path


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
