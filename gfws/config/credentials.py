"""The account's credentials: from environment variables, files or (if allowed) the config itself.

Every message names the variable, file or key that is wrong, never the value;
the venue checks the values (``credentials``) and keeps the secret out of
every ``repr``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec
from autobahn.websocket.util import parse_url

from gfws.config.errors import ConfigError, problem
from gfws.config.sections import AuthConfig, Credentials


class Signer(Protocol):
    """What reading credentials asks of a venue (a part of ``gfws.interfaces.IVenueDialect``)."""

    @property
    def auth_defaults(self) -> Mapping[str, str]: ...

    def credentials(self, key: str, secret: str) -> Any: ...


def is_loopback(host: str) -> bool:
    """Plain ws:// is tolerated only where nobody else can listen in."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False



def read_credentials(auth: AuthConfig, dialect: Signer, base_dir: str, source: str) -> Credentials:
    """The API key and secret from the environment, files or (if allowed) the config itself.

    Every message names the variable, file or key, never the value.
    """
    defaults = {key: value for key, value in dialect.auth_defaults.items() if getattr(auth, key) is None}
    auth = msgspec.structs.replace(auth, **defaults)
    assert auth.rest_url is not None
    try:
        secure, host, _port, _resource, _path, _params = parse_url(
            auth.rest_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1))
    except Exception:
        raise problem(source, "auth.rest_url", "an https:// URL", auth.rest_url) from None
    if not auth.rest_url.startswith(("https://", "http://")) or (not secure and not is_loopback(host)):
        raise problem(source, "auth.rest_url", "an https:// URL (plain http:// only to a loopback host)",
                      auth.rest_url)
    key, key_from = _secret(auth, "api_key", base_dir, source)
    secret, secret_from = _secret(auth, "api_secret", base_dir, source)
    try:
        secrets = dialect.credentials(key, secret)
    except ValueError as e:
        raise ConfigError(f"{source}: auth: {e} (key from {key_from}, secret from {secret_from})") from None
    return Credentials(rest_url=auth.rest_url, secrets=secrets, source=f"key {key_from}, secret {secret_from}",
                       token_timeout=auth.token_timeout)


def check_inline(auth: AuthConfig, source: str) -> None:
    for name in ("api_key", "api_secret"):
        if getattr(auth, name) is not None and not auth.allow_inline_secrets:
            raise ConfigError(
                f"{source}: auth.{name}: inline credentials need allow_inline_secrets = true; "
                f"expected {name}_env (an environment variable) or {name}_file"
            )


def _secret(auth: AuthConfig, name: str, base_dir: str, source: str) -> tuple[str, str]:
    """One credential and where it came from: inline (if allowed), a file, or an environment variable."""
    inline = getattr(auth, name)
    path = getattr(auth, f"{name}_file")
    variable: str = getattr(auth, f"{name}_env")
    if inline is not None:
        if not auth.allow_inline_secrets:
            raise ConfigError(
                f"{source}: auth.{name}: inline credentials need allow_inline_secrets = true; "
                f"expected {name}_env (an environment variable) or {name}_file"
            )
        value, where = inline, f"auth.{name}"
    elif path is not None:
        path = os.path.join(base_dir, path)
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise ConfigError(f"{source}: auth.{name}_file: cannot read {path}: {why}") from None
        where = f"file {path}"
    else:
        value, where = os.environ.get(variable, "").strip(), f"environment variable {variable}"
        if not value:
            raise ConfigError(
                f"{source}: auth.{name}_env: environment variable {variable} is not set; "
                f"expected the account's {name.replace('_', ' ')} there (or set auth.{name}_file)"
            )
    if not value:
        raise ConfigError(f"{source}: auth.{name}: the {where} is empty")
    return value, where
