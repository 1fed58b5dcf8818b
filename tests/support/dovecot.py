"""A private Dovecot IMAP server on loopback, for the mailbox reader's tests.

Debian's dovecot-imapd (scripts/test installs it) run from a configuration file of its
own (`dovecot -c FILE -F`), with its own run, state and mail directories and its own
port: never the machine's default instance. Any user name logs in with PASSWORD.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.postfix import wait_port

DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "mailbox-password"

CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def available() -> bool:
    return Path(DOVECOT).exists()


class Dovecot:
    """`with Dovecot(port) as imap:` then log in at 127.0.0.1:port as anyone."""

    def __init__(self, port: int):
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="outcry-dovecot-"))
        self.root.chmod(0o755)
        self.conf = self.root / "dovecot.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Dovecot:
        owner = pwd.getpwnam("dovecot")
        for sub in ("mail", "home"):
            (self.root / sub).mkdir()
            shutil.chown(self.root / sub, user=owner.pw_uid, group=owner.pw_gid)
        self.conf.write_text(
            CONF.format(
                root=self.root,
                port=self.port,
                password=PASSWORD,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
            )
        )
        self.proc = subprocess.Popen(
            [DOVECOT, "-c", str(self.conf), "-F"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_port(self.port, timeout=60)
        except AssertionError:
            self.__exit__()
            raise AssertionError(f"dovecot did not start:\n{self.log()}") from None
        return self

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        shutil.rmtree(self.root, ignore_errors=True)
