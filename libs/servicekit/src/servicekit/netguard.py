"""Which network targets a service may call on a user's behalf (`http.request` jobs, webhooks).

A URL given by a user could point at the deployment's own network (the store, the broker, a
cloud metadata address). Every address a host resolves to must be public, or allow-listed by
the operator (host names, addresses or networks, comma-separated: `127.0.0.1,10.0.0.0/8,
api.internal`)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    """Which non-public targets an operator permits."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[Network] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry)

    @classmethod
    def parse(cls, setting: str) -> AllowList:
        return cls(setting.split(","))

    def permits(self, host: str, address: Address) -> bool:
        return host.lower() in self.hosts or any(address in n for n in self.networks)


def is_public(address: Address) -> bool:
    return address.is_global and not address.is_multicast


def refused_address(host: str, addresses: list[Address], allow: AllowList) -> Address | None:
    """The first address that is neither public nor allow-listed, or None if all may be
    called (every address is checked: a connection may use any of them)."""
    for address in addresses:
        if not is_public(address) and not allow.permits(host, address):
            return address
    return None


class ResolveError(Exception):
    """The host name does not resolve (often transient)."""


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses `host` stands for; `ResolveError` if it does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ResolveError(f"cannot resolve {host}: {exc}") from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
