"""Service logs as JSON lines: every service's config.yml LOGGING formats records with
`JsonFormatter`, one object a line:

    {"time": "2026-11-20T02:30:00.123+00:00", "level": "INFO", "logger": "mallcare_common.web",
     "message": "GET /complaints/<string:number> 404", "method": "GET", "route": "/complaints/<string:number>",
     "status": 404, "ms": 3.1, "caller": "E3501", "request_id": "...", "error": "NOT_FOUND", ...}

Fields given with `extra=` become keys of their own; a record with an exception adds
`exception` (its type) and `traceback`. The message, the fields (but the request id) and the
traceback go through `personal.scrub` on the way out: a phone number, e-mail address, ID or
member number that reached a log record anyway (an exception's text) is written as [phone],
[e-mail], ...
"""

import json
import logging
from datetime import datetime, timezone

from .personal import scrub

# fields written as they are: a hex request id can hold a run of digits that reads as a phone
IDENTIFIERS = ("request_id",)
# what every LogRecord has; anything else on a record came from `extra`
_STANDARD = set(vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        line.update(
            (key, value if key in IDENTIFIERS else scrub(value))
            for key, value in vars(record).items()
            if key not in _STANDARD
        )
        if record.exc_info and record.exc_info[0]:  # (None, None, None): exc_info=True outside an except
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = scrub(self.formatStack(record.stack_info))
        text = json.dumps(line, ensure_ascii=False, default=lambda value: scrub(str(value)))
        # a lone surrogate (a client's "\ud800" quoted in an error) cannot be written as UTF-8
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
