"""The operator's view of mallcare.dead-letters: list, show, replay, purge.

    python -m mallcare_common.deadletters [--amqp-uri URI] list
    python -m mallcare_common.deadletters show <id>
    python -m mallcare_common.deadletters replay <id> | replay --all [--queue Q]
    python -m mallcare_common.deadletters purge <id> --yes

AMQP_URI comes from the environment unless --amqp-uri is given. Every command
takes the dead letters off the queue unacknowledged and gives back (by closing
its channel) those it did not replay or purge, so `list` and `show` change
nothing. A dead letter's id is its `x-mallcare-id` header, set by the handler
that gave up on it (messaging.py); a message RabbitMQ dead-lettered by itself
(the delivery-limit backstop) has none and gets one from a hash of its body and
its `x-death`, stable as long as it stays there.

`replay` republishes the body unchanged through the default exchange to the queue
that failed it (so no other subscriber gets a second copy), with the original
headers but not the dead-letter ones, then removes the dead letter; a queue that
no longer exists is an error and the dead letter stays.
"""

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from amqp.exceptions import NotFound
from kombu import Connection
from kombu.message import Message
from nameko.amqp.publish import Publisher, UndeliverableMessage

from .messaging import DEAD_LETTER_HEADER, DEAD_LETTER_QUEUE, raw_body

# Headers RabbitMQ adds when it dead-letters; a replayed message starts without them.
RABBITMQ_DEATH_HEADERS = (
    "x-death",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-first-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-last-death-exchange",
    "x-delivery-count",
)
COLUMNS = ("id", "event_type", "event_id", "queue", "error", "attempts", "dead_lettered_at")


class DeadLetter:
    """One message of the dead-letter queue, as got (not yet acknowledged)."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.body: bytes = raw_body(message)
        self.headers: dict[str, Any] = dict(message.headers or {})

    def mark(self, name: str, default: Any = None) -> Any:
        return self.headers.get(DEAD_LETTER_HEADER + name, default)

    @property
    def first_death(self) -> dict[str, Any]:
        deaths: list[dict[str, Any]] = self.headers.get("x-death") or [{}]
        return deaths[-1]

    @property
    def id(self) -> str:
        marked: str | None = self.mark("id")
        if marked:
            return marked
        death = self.first_death
        seed = self.body + repr((death.get("queue"), death.get("reason"), death.get("time"))).encode()
        return "rmq-" + hashlib.sha256(seed).hexdigest()[:16]

    @property
    def queue(self) -> str | None:
        queue: str | None = (
            self.mark("queue") or self.headers.get("x-first-death-queue") or self.first_death.get("queue")
        )
        return queue

    @property
    def event(self) -> dict[str, Any]:
        try:
            body = json.loads(self.body)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def summary(self) -> dict[str, Any]:
        death = self.first_death
        error = (
            f"{self.mark('reason')}: {self.mark('error-type')}: {self.mark('error')}"
            if self.mark("id")
            else f"rabbitmq: {death.get('reason', 'unknown')}"
        )
        return {
            "id": self.id,
            "event_type": self.event.get("event_type", "-"),
            "event_id": self.event.get("event_id", "-"),
            "queue": self.queue,
            "error": error,
            "attempts": self.mark("attempts", death.get("count")),
            "dead_lettered_at": self.mark("dead-lettered-at", str(death.get("time", "-"))),
        }

    def detail(self) -> dict[str, Any]:
        try:
            shown = self.body.decode("utf-8")
        except UnicodeDecodeError:
            shown = repr(self.body)
        return {
            **self.summary(),
            "headers": self.headers,
            "content_type": self.message.content_type,
            "content_encoding": self.message.content_encoding,
            "body": shown,
        }

    def replay_headers(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in self.headers.items()
            if not k.startswith(DEAD_LETTER_HEADER) and k not in RABBITMQ_DEATH_HEADERS
        }


def read_all(channel: Any) -> list[DeadLetter]:
    """Every dead letter now in the queue, unacknowledged, in queue order."""
    letters = []
    while (message := channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)) is not None:
        letters.append(DeadLetter(channel.message_to_python(message)))
    return letters


def find(letters: Iterable[DeadLetter], letter_id: str) -> DeadLetter:
    for letter in letters:
        if letter.id == letter_id:
            return letter
    raise LookupError(f"no dead letter {letter_id} in {DEAD_LETTER_QUEUE}")


def replay(letter: DeadLetter, publisher: Any) -> None:
    """Back to the queue that failed it, confirmed, then off the dead letters."""
    if not letter.queue:
        raise LookupError(f"dead letter {letter.id} does not say which queue failed it")
    publisher.publish(
        letter.body,
        routing_key=letter.queue,
        headers=letter.replay_headers(),
        content_type=letter.message.content_type or "application/data",
        content_encoding=letter.message.content_encoding or "binary",
    )
    letter.message.ack()


def run(args: argparse.Namespace, out: TextIO) -> None:
    with Connection(args.amqp_uri) as connection:
        channel = connection.channel()
        letters = read_all(channel)
        if args.command == "list":
            out.write("\t".join(COLUMNS) + "\n")
            for letter in letters:
                out.write("\t".join(" ".join(str(letter.summary()[c]).split()) for c in COLUMNS) + "\n")
        elif args.command == "show":
            out.write(json.dumps(find(letters, args.id).detail(), indent=2, ensure_ascii=False, default=str) + "\n")
        elif args.command == "purge":
            if not args.yes:
                raise PermissionError(f"purge deletes dead letter {args.id} for good: add --yes to confirm")
            find(letters, args.id).message.ack()
            out.write(f"purged {args.id}\n")
        else:
            chosen = letters if args.all else [find(letters, args.id)]
            chosen = [letter for letter in chosen if args.queue in (None, letter.queue)]
            publisher = Publisher(args.amqp_uri, mandatory=True, exchange="", retry=False)
            for letter in chosen:
                replay(letter, publisher)
                out.write(f"replayed {letter.id} to {letter.queue}\n")
        channel.close()  # gives back whatever was not acknowledged


def parser(prog: str = "python -m mallcare_common.deadletters") -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[0])  # none under -OO
    top.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI"), help="default: $AMQP_URI")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every dead letter: id, event, queue, error, attempts, time")
    commands.add_parser("show", help="one dead letter's headers and body").add_argument("id")
    replay_cmd = commands.add_parser("replay", help="republish to the queue that failed it, then remove")
    which = replay_cmd.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--all", action="store_true", help="every dead letter (of --queue, if given)")
    replay_cmd.add_argument("--queue", help="with --all: only those this queue failed")
    purge_cmd = commands.add_parser("purge", help="delete one dead letter for good")
    purge_cmd.add_argument("id")
    purge_cmd.add_argument("--yes", action="store_true", help="confirm the deletion")
    return top


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, prog: str = "python -m mallcare_common.deadletters"
) -> int:
    """`prog`: how the usage lines name the command (`mallcare deadletters` wraps this one)."""
    args = parser(prog).parse_args(argv)
    if not args.amqp_uri:
        parser(prog).error("set AMQP_URI or pass --amqp-uri")
    try:
        run(args, out)
    except NotFound:
        sys.stderr.write(
            f"error: no queue {DEAD_LETTER_QUEUE} at {args.amqp_uri.rsplit('@', 1)[-1]}: "
            "no mallcare handler has started on this vhost yet\n"
        )
        return 2
    except (LookupError, PermissionError, UndeliverableMessage) as exc:
        sys.stderr.write(f"error: {exc or 'the queue to replay to does not exist'}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
