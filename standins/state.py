"""What the stand-ins share across their threads: each target's mode, and the messages
received, kept in sent.json under the state directory as well."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGETS = ("sms", "wechat", "webhook", "smtp")
MODES = ("ok", "down", "refuse", "slow")


class State:
    def __init__(self, directory: Path, slow_seconds: float) -> None:
        self.directory = directory
        self.slow_seconds = slow_seconds
        self._lock = threading.Lock()
        self._modes = dict.fromkeys(TARGETS, "ok")
        self._codes: dict[str, Any] = {}
        self._sent: list[dict[str, Any]] = []
        directory.mkdir(parents=True, exist_ok=True)
        self._save()

    def mode(self, target: str) -> str:
        with self._lock:
            return self._modes[target]

    def refusal(self, target: str, default: Any) -> Any:
        """The error `target` answers in refuse mode: the code control gave, or its usual one."""
        with self._lock:
            return self._codes.get(target, default)

    def set_mode(self, target: str, mode: str, code: Any = None) -> None:
        if target not in TARGETS or mode not in MODES:
            raise ValueError(f"target is one of {TARGETS} and mode one of {MODES}")
        with self._lock:
            self._modes[target] = mode
            self._codes.pop(target, None)
            if code is not None:
                self._codes[target] = code

    def modes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._modes)

    def record(self, channel: str, to: str, text: str, subject: str | None = None, **details: Any) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "channel": channel,
            "to": to,
            "text": text,
            "subject": subject,
            **details,
        }
        with self._lock:
            self._sent.append(entry)
            self._save()

    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._sent)

    def _save(self) -> None:
        """sent.json replaced whole, so a reader never sees half a list."""
        partial = self.directory / "sent.json.partial"
        partial.write_text(json.dumps(self._sent, ensure_ascii=False, indent=1), encoding="utf-8")
        partial.replace(self.directory / "sent.json")
