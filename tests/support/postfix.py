"""A private Postfix instance on loopback, for tests and the delivery benchmark.

Debian's postfix (scripts/test installs it) run from a configuration directory of its
own (`postfix -c DIR`), with its own queue, its own log file and its own ports: never
the machine's default instance, never port 25, never /etc/postfix/main.cf. It relays
every message to one "remote" server (an aiosmtpd sink on loopback) and hands mail for
the bounce domain to `outcry inbound` over LMTP, as a site's MTA would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"

# Every service without chroot (the queue directory holds no copies of /etc here).
MASTER_CF = """\
127.0.0.1:{smtp_port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.example.net
mydomain = example.net
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{remote_port}
relay_domains = {bounce_domain}
transport_maps = inline:{{ {bounce_domain}=lmtp:inet:127.0.0.1:{lmtp_port} }}
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
smtp_dns_support_level = disabled
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
recipient_delimiter = +
smtputf8_enable = yes
biff = no
# Tests wait for retries: seconds, not Postfix's minutes.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
{extra}
"""


def available() -> bool:
    return Path(POSTFIX).exists()


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


class Postfix:
    """`with Postfix(…) as mta:` then send to 127.0.0.1:mta.smtp_port."""

    def __init__(
        self,
        *,
        smtp_port: int,
        remote_port: int,
        lmtp_port: int,
        bounce_domain: str = "bounces.example.org",
        extra: str = "",
    ):
        # Not under pytest's temporary folder: the postfix user must be able to reach it,
        # and pytest's is private to root.
        root = Path(tempfile.mkdtemp(prefix="outcry-postfix-"))
        root.chmod(0o755)
        self.root = root
        self.smtp_port = smtp_port
        values = {
            "root": root,
            "smtp_port": smtp_port,
            "remote_port": remote_port,
            "lmtp_port": lmtp_port,
            "bounce_domain": bounce_domain,
            "extra": extra,
        }
        self.main_cf = MAIN_CF.format(**values)
        self.master_cf = MASTER_CF.format(**values)

    def _postfix(self, *args: str) -> None:
        subprocess.run(
            [POSTFIX, "-c", str(self.root), *args], check=True, capture_output=True, timeout=60
        )

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "main.cf").write_text(self.main_cf)
        (self.root / "master.cf").write_text(self.master_cf)
        (self.root / "queue").mkdir(exist_ok=True)
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        shutil.chown(data, user="postfix")
        try:
            self._postfix("start")
        except subprocess.CalledProcessError as exc:
            raise AssertionError(f"postfix did not start:\n{self.log()}") from exc
        wait_port(self.smtp_port, timeout=60)

    def stop(self) -> None:
        try:
            self._postfix("stop")
        except subprocess.CalledProcessError:
            self._postfix("abort")
        pid_file = self.root / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 15
        while pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def flush(self) -> None:
        """Try every deferred message now."""
        self._postfix("flush")

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else "(no log)"

    def __enter__(self) -> Postfix:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
