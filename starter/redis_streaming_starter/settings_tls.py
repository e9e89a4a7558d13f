"""The ``redis.tls`` section: certificates and verification for ``rediss://`` URLs."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from redis_streaming_starter.settings_sections import Section

__all__ = ["TlsSettings"]


class TlsSettings(Section):
    """TLS of the Redis connection; applies to ``rediss://`` and ``rediss+cluster://`` URLs
    (a ``redis://`` URL with any of these set is refused at startup)."""

    ca_file: str | None = Field(
        None,
        description="PEM file of the certificate authority (or authorities) that signed the "
        "server's certificate; unset = the system's trusted CAs.",
    )
    cert_file: str | None = Field(
        None,
        description="PEM client certificate, for a server that requires one "
        "(tls-auth-clients yes); its key in key_file, or in the same file.",
    )
    key_file: str | None = Field(
        None, description="PEM private key of cert_file (unencrypted); needs cert_file."
    )
    verify: Literal["required", "none"] = Field(
        "required",
        description="required: the server's certificate must be signed by a trusted CA "
        "(ca_file); none: not checked - encrypted, but anyone in between can pose as the "
        "server (for tests only).",
    )
    check_hostname: bool = Field(
        True,
        description="With verify=required, the certificate must name the host of redis.url "
        "(set false when connecting by an address the certificate does not list).",
    )

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            name = info.field_name
            raise ValueError(
                f"redis.tls.{name} {value!r} is not a readable file; point "
                f"REDIS_STREAMING_REDIS__TLS__{name.upper()} at the PEM file"
            )
        return value

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if self.key_file and not self.cert_file:
            raise ValueError(
                "redis.tls.key_file is set without redis.tls.cert_file; set "
                "REDIS_STREAMING_REDIS__TLS__CERT_FILE to the client certificate it belongs to"
            )
        return self

    @property
    def configured(self) -> bool:
        """True when any value differs from the defaults (not "was given": a copy of the
        settings through ``model_dump`` gives every field, defaults included)."""
        return any(
            getattr(self, name) != field.default for name, field in type(self).model_fields.items()
        )

    def client_kwargs(self) -> dict[str, Any]:
        """redis-py's ``ssl_*`` keyword arguments for these settings."""
        kwargs: dict[str, Any] = {
            "ssl_cert_reqs": self.verify,
            "ssl_check_hostname": self.check_hostname and self.verify == "required",
        }
        if self.ca_file:
            kwargs["ssl_ca_certs"] = self.ca_file
        if self.cert_file:
            kwargs["ssl_certfile"] = self.cert_file
            kwargs["ssl_keyfile"] = self.key_file
        return kwargs
