"""SSH to a worker machine with the deployment's own key (paramiko): wait for cloud-init to finish, read
the worker's journal. Used by ``dac-provision logs --worker``; nothing else needs a shell on a worker.

Host keys are trusted on first use and remembered in the deployment's ``known_hosts``; a changed key
afterwards is refused, naming the file to edit if the machine was really rebuilt. ``DAC_SSH_PORT``
overrides port 22; the firewall admits SSH only from ``digitalocean.ssh-from``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import paramiko

from .base import ProviderError

UNIT = "dac-worker.service"


class SshError(ProviderError):
    pass


@dataclass(frozen=True)
class Target:
    host: str
    key_path: Path
    known_hosts: Path
    user: str = "root"
    port: int = 22

    @classmethod
    def for_droplet(cls, host: str, key_path: Path, known_hosts: Path) -> Target:
        return cls(host, key_path, known_hosts, port=int(os.environ.get("DAC_SSH_PORT", "22")))


def run(target: Target, command: str, timeout: float = 60) -> tuple[int, str]:
    """Run ``command`` on the machine; its exit status and output (stdout, then stderr)."""
    if not target.known_hosts.exists():
        target.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        target.known_hosts.touch(mode=0o600)
    client = paramiko.SSHClient()
    client.load_host_keys(str(target.known_hosts))
    # Trust on first use: a new droplet's key is recorded in known_hosts; a different one later is refused.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
    where = f"{target.host}:{target.port}"
    try:
        key = paramiko.Ed25519Key.from_private_key_file(str(target.key_path))
        client.connect(
            target.host,
            port=target.port,
            username=target.user,
            pkey=key,
            allow_agent=False,
            look_for_keys=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
        )
        _, stdout, stderr = client.exec_command(command, timeout=timeout)
        output = stdout.read().decode(errors="replace") + stderr.read().decode(errors="replace")
        return stdout.channel.recv_exit_status(), output
    except paramiko.BadHostKeyException:
        raise SshError(
            f"{where}: its host key differs from the one recorded in {target.known_hosts};"
            " if the machine was rebuilt, remove its line there"
        ) from None
    except paramiko.AuthenticationException:
        raise SshError(f"{where}: the deployment's SSH key was refused") from None
    except (OSError, paramiko.SSHException) as exc:
        raise SshError(
            f"{where}: cannot reach it over SSH ({type(exc).__name__}: {exc});"
            " is your address in digitalocean.ssh-from?"
        ) from None
    finally:
        client.close()


def journal(target: Target, lines: int = 200) -> str:
    status, output = run(target, f"journalctl --unit {UNIT} --no-pager --lines {int(lines)}")
    if status != 0:
        raise SshError(f"{target.host}: journalctl exited {status}: {output.strip()[-300:]}")
    return output


def boot_log(target: Target, lines: int = 200, timeout: float = 900) -> str:
    """Wait until cloud-init has finished on the machine, then its status and the tail of its output log:
    how the boot went, and what failed if the worker never said hello."""
    status, output = run(target, "cloud-init status --wait --long", timeout=timeout)
    if status not in (0, 1, 2):  # 1: cloud-init failed, 2: done with recoverable errors; both worth showing
        raise SshError(f"{target.host}: cloud-init status exited {status}: {output.strip()[-300:]}")
    _, tail = run(target, f"tail --lines {int(lines)} /var/log/cloud-init-output.log")
    return output + tail
