"""Sealing secrets that must be shown again later (an app user's token, for its QR code).

Tokens are looked up by their hash; a sealed copy (Fernet: AES-128-CBC + HMAC-SHA256) lets a
project manager display an active app user's token again, as ODK Central does, without the
database holding it in the clear. The key comes from `ODK_MCP_SECRET_KEY`, or is created once
in `<data_dir>/secret.key` (mode 0600) for a single-machine server.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def load_or_create_key(path: Path) -> bytes:
    """The key stored at `path`, creating it (readable by the owner only) on first use."""
    if path.is_file():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


class Sealer:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        """The secret, or None when it was sealed under another key."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            return None
