"""A real IMAP server for the mailbox tests: Debian's dovecot-imapd (scripts/lib.sh's
ensure_test_tools installs it), run as an unprivileged process from a configuration, a
plain-text passwd file and maildirs in a temporary directory: no root-only path is used.
Run by root (as CI is), it runs as `nobody`, since dovecot's login process refuses root."""

import grp
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import free_port

USER, PASSWORD = "tousu-sh", "mailbox-password-1"

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_location = maildir:{root}/mail/%u
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """A running server with one mailbox (USER, PASSWORD); `idle=False` leaves IDLE out of
    what it offers, as some providers' servers do."""

    def __init__(self, idle=True):
        binary = shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin")
        if binary is None:
            raise RuntimeError("dovecot is not installed: scripts/test.sh installs Debian's dovecot-imapd")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="mallcare-imap-"))
        root_run = os.geteuid() == 0
        user = "nobody" if root_run else pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        capability = "" if idle else "imap_capability = IMAP4rev1 LITERAL+ SASL-IR"
        (self.root / "dovecot.conf").write_text(
            CONFIG.format(root=self.root, user=user, group=group, port=self.port, capability=capability)
        )
        if root_run:
            shutil.chown(self.root, user, group)
            for path in self.root.rglob("*"):
                shutil.chown(path, user, group)
        self.process = subprocess.Popen(
            [binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            **({"user": user, "group": group, "extra_groups": []} if root_run else {}),
        )
        self._wait_until_it_answers()

    def _wait_until_it_answers(self):
        deadline = time.monotonic() + 20
        while True:
            try:
                self.client().logout()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.root / "dovecot.log"
                    raise RuntimeError(
                        "dovecot did not start: " + (log.read_text() if log.exists() else "no log")
                    ) from None
                time.sleep(0.1)

    def client(self):
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(USER, PASSWORD)
        return imap

    def append(self, raw):
        """Deliver a mail (bytes) to the inbox, unseen."""
        imap = self.client()
        try:
            kind, data = imap.append("INBOX", None, None, raw)
            assert kind == "OK", data
        finally:
            imap.logout()

    @contextmanager
    def inbox(self):
        """A client with the inbox selected; the number of mails in it as `.count`."""
        imap = self.client()
        try:
            imap.count = int(imap.select("INBOX")[1][0])
            yield imap
        finally:
            imap.logout()

    def unseen(self):
        with self.inbox() as imap:
            return imap.search(None, "UNSEEN")[1][0].split()

    def mark_all_unseen(self):
        with self.inbox() as imap:
            imap.store("1:*", "-FLAGS", "(\\Seen)")

    def count(self):
        with self.inbox() as imap:
            return imap.count

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)
        shutil.rmtree(self.root, ignore_errors=True)
