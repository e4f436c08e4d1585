"""A real IMAP server on loopback: a private Dovecot (IMAPS, one passwd-file user, Maildir),
started from the Debian package's binary with a configuration of its own in a temporary
folder, so it never touches the machine's Dovecot."""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.net import free_port

USER, PASSWORD = "drip", "s3cret"


class DovecotMissing(RuntimeError):
    """The dovecot binary is not installed."""


@dataclass(frozen=True)
class ImapServer:
    port: int
    user: str
    password: str
    process: Any  # subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"imaps://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX?verify=false"

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context)
        client.login(self.user, self.password)
        return client

    def deliver(self, raw: bytes, mailbox: str = "INBOX") -> None:
        client = self.client()
        try:
            status, _ = client.append(mailbox, None, None, raw)
            assert status == "OK"
        finally:
            client.logout()

    def count(self, mailbox: str) -> int:
        client = self.client()
        try:
            status, data = client.select(mailbox)
            return int(data[0]) if status == "OK" and data[0] is not None else -1
        finally:
            client.logout()


def _config(root: Path, port: int, user: pwd.struct_passwd, home: Path) -> str:
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {user.pw_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={user.pw_uid} gid={grp.getgrgid(user.pw_gid).gr_gid} home={home}/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""


def _log(root: Path) -> str:
    return (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""


@contextlib.contextmanager
def dovecot() -> Iterator[ImapServer]:
    """A private Dovecot, once its user can log in; stopped and removed at the end."""
    import trustme

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        raise DovecotMissing("dovecot is missing: run scripts/test (it installs it) or apt-get install dovecot-imapd")
    root = Path(tempfile.mkdtemp(prefix="dripper-imap-", dir="/tmp"))
    root.chmod(0o755)  # Dovecot's auth process, not root, reads the users file
    user = pwd.getpwnam("dovecot")
    home = root / "home"
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid)
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    port = free_port()
    (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    (root / "dovecot.conf").write_text(_config(root, port, user, home))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        server = _ready(ImapServer(port, USER, PASSWORD, process), root)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def _ready(server: ImapServer, root: Path) -> ImapServer:
    process = server.process
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode() if process.stderr and process.poll() is not None else ""
            raise RuntimeError(f"dovecot did not start: {stderr}{_log(root)}")
        time.sleep(0.1)
    # Listening is not serving: on a machine where Dovecot has just been installed its auth
    # process can take a while to answer, and logins meanwhile get "[UNAVAILABLE] Temporary
    # authentication failure". The server is ready once a login works.
    while True:
        try:
            server.client().logout()
            return server
        except imaplib.IMAP4.error as exc:
            if "UNAVAILABLE" not in str(exc) or time.monotonic() > deadline + 20:
                raise RuntimeError(f"dovecot does not let its user log in: {exc}\n{_log(root)}") from None
            time.sleep(0.5)
