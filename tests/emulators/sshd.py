"""An SSH server standing in for a droplet's sshd (asyncssh, in its own thread, on the droplet's address).

It admits ``root`` only with a key the droplet was created with (its ``ssh_keys``), as cloud-init
arranges on a real droplet, and answers the two commands dac-provision runs: ``journalctl --unit
dac-worker.service`` (the emulated worker's console) and ``cloud-init status --wait --long``.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncssh

from .cloud import EmulatedCloud


class DropletSshd:
    def __init__(self, cloud: EmulatedCloud, droplet: dict[str, Any], host: str, port: int) -> None:
        self.cloud, self.droplet, self.host, self.port = cloud, droplet, host, port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.commands: list[str] = []
        with cloud.do.lock:
            keys = [k["public_key"] for k in cloud.do.ssh_keys.values() if k["id"] in droplet["_ssh_keys"]]
        self.allowed = {" ".join(k.split()[:2]) for k in keys}

    def start(self) -> DropletSshd:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("sshd did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        sshd = self

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                offered = " ".join(key.export_public_key("openssh").decode().split()[:2])
                return username == "root" and offered in sshd.allowed

        self.server = self.loop.run_until_complete(
            asyncssh.create_server(
                Server, self.host, self.port, server_host_keys=[self.host_key], process_factory=self._process
            )
        )
        ready.set()
        self.loop.run_forever()

    async def _process(self, process: asyncssh.SSHServerProcess) -> None:
        command = process.command or ""
        self.commands.append(command)
        if command.startswith("journalctl --unit dac-worker.service"):
            process.stdout.write(self.cloud.worker(self.droplet["name"]).console())
            process.exit(0)
        elif command == "cloud-init status --wait --long":
            process.stdout.write("status: done\nextended_status: done\nboot_status_code: enabled-by-generator\n")
            process.exit(0)
        elif command.startswith("tail --lines") and command.endswith("/var/log/cloud-init-output.log"):
            process.stdout.write("Cloud-init v. 24.1 finished. Datasource DataSourceDigitalOcean.\n")
            process.exit(0)
        else:
            process.stderr.write(f"{command.split()[0] if command else 'sh'}: command not found\n")
            process.exit(127)

    def stop(self) -> None:
        def close() -> None:
            self.server.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(close)
