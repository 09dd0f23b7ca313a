"""Network guard for the crawler (SSRF protection).

Two layers, both applied to every request and every redirect hop:

1. The URL: http(s) only, a host that belongs to the source being ingested, no non-canonical IP
   forms (``2130706433``, ``0x7f.1``, ``127.1``) and no cloud metadata host names.
2. The address: when a connection is opened, the host is resolved once, *every* resolved address is
   checked with :mod:`ipaddress` (loopback, private, link-local, CGNAT, unspecified, multicast,
   reserved and cloud metadata addresses are refused; IPv4 embedded in IPv6 -- mapped, compatible,
   6to4, Teredo, NAT64 -- is unwrapped first) and the socket connects to the checked address
   itself. The name is never resolved a second time for that connection, so DNS rebinding between
   the check and the connection is not possible. TLS still verifies the certificate against the
   host name (SNI and ``Host`` come from the URL, not from the address).

Operators may allow intranet documentation hosts explicitly (``KNOWLEDGE_ALLOWED_PRIVATE_HOSTS`` or
``allow_private_network: true`` on a source): such a host may resolve to private, loopback or
link-local addresses. Cloud metadata addresses and names, unspecified and multicast addresses are
refused even then.
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Collection, Iterable

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWANCE_HINT = ("to index an intranet host, list it in KNOWLEDGE_ALLOWED_PRIVATE_HOSTS "
                  "or set allow_private_network: true on its source")

# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS ECS, AWS IPv6, Azure wireserver, Alibaba, Oracle).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "168.63.129.16", "100.100.100.200", "192.0.0.192",
))
METADATA_HOSTS = frozenset({
    "metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal",
    "metadata.azure.internal",
})
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# not globally reachable (IANA special-purpose registries), whatever this Python's ipaddress says
NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "3fff::/20", "5f00::/16",
))


class Refused(Exception):
    """A URL or an address the crawler must not reach; the message says why."""


def normalize_host(host: str) -> str:
    """Lowercase, without brackets or a trailing dot; IP addresses in their canonical form."""
    value = host.strip().lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def url_host(url: str) -> str:
    """The host the HTTP client will connect to (parsed by httpx itself, so checks and requests
    never disagree about which host a URL names)."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise Refused(f"invalid URL ({exc})") from None
    if not host:
        raise Refused("URL without a host")
    return normalize_host(host)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or ip in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    packed = ip.packed
    if packed[:12] == bytes(12) and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    return None


def address_problem(ip: IPAddress, *, private_ok: bool = False) -> str | None:
    """Why the crawler must not connect to ip, or None when it may.

    private_ok (an operator-allowed host) lets loopback, private, link-local, CGNAT and other
    non-public unicast addresses through; metadata, unspecified and multicast never pass."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])  # a zone id does not change the address
        if ip in METADATA_ADDRESSES:
            return "a cloud metadata address"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner, private_ok=private_ok)
            if problem:
                return f"{problem} (embedded in {ip})"
            if ip.ipv4_mapped is not None or int(ip) >> 32 == 0:
                return None  # mapped or compatible: the IPv4 address is the destination
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if private_ok:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global or any(ip in net for net in NOT_GLOBAL if net.version == ip.version):
        return "not a public address"
    return None


def _non_canonical_ipv4(host: str) -> bool:
    """Forms the C resolver reads as IPv4 but ipaddress does not: 2130706433, 0177.0.0.1, 0x7f.1, 127.1."""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    try:
        socket.inet_aton(host)
        return True
    except (OSError, ValueError):
        return False


def _hint(ip: IPAddress) -> str:
    """How to allow the address, when the operator can (never for metadata, unspecified, multicast)."""
    return f"; {ALLOWANCE_HINT}" if address_problem(ip, private_ok=True) is None else ""


class NetGuard:
    """The crawler's network policy: which hosts may be private, and the checks themselves."""

    def __init__(self, allowed_private_hosts: Iterable[str] = ()) -> None:
        self._private_ok: set[str] = set()
        self.allow_private(allowed_private_hosts)

    def allow_private(self, hosts: Iterable[str]) -> None:
        self._private_ok.update(normalize_host(h) for h in hosts if h and h.strip())

    def private_ok(self, host: str) -> bool:
        return normalize_host(host) in self._private_ok

    def check_url(self, url: str, hosts: Collection[str] | None = None) -> str:
        """Refuse a URL before any request; returns its normalised host.

        hosts: the hosts this request may go to (a source's own hosts); None allows any host."""
        try:
            scheme = httpx.URL(url).scheme
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise Refused(f"invalid URL ({exc})") from None
        if scheme not in ("http", "https"):
            raise Refused("unsupported URL scheme")
        host = url_host(url)
        if hosts is not None and host not in {normalize_host(h) for h in hosts}:
            raise Refused(f"host {host} is not a host of this source")
        if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
            raise Refused(f"{host} is a cloud metadata host")
        if _non_canonical_ipv4(host):
            raise Refused(f"{host} is a non-canonical IP address form")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host  # a name: its addresses are checked when the connection is opened
        problem = address_problem(ip, private_ok=self.private_ok(host))
        if problem:
            raise Refused(f"{host} is {problem}{_hint(ip)}")
        return host

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve host once and check every address; the checked addresses, in resolver order."""
        name = normalize_host(host)
        if name in METADATA_HOSTS or _non_canonical_ipv4(name):
            raise Refused(f"{name} may not be reached")
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {name}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {name}")
        private_ok = self.private_ok(name)
        for addr in addresses:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
            problem = address_problem(ip, private_ok=private_ok)
            if problem:
                shown = name if name == str(ip) else f"{name} resolves to {ip}, which"
                raise Refused(f"{shown} is {problem}{_hint(ip)}")
        return addresses


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses (resolve, check, connect to that address)."""

    def __init__(self, guard: NetGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[object] | None = None) -> httpcore.NetworkStream:
        last: Exception | None = None
        for address in self._guard.resolve(host, port):
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)  # type: ignore[arg-type]
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[object] | None = None) -> httpcore.NetworkStream:
        raise Refused("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def guarded_transport(guard: NetGuard) -> httpx.HTTPTransport:
    """An httpx transport whose every new connection goes through the guard.

    A transport passed explicitly also means httpx ignores HTTP(S)_PROXY from the environment: a
    proxy would resolve names itself and the address check would only see the proxy."""
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(  # httpx 0.28 (pinned) keeps its httpcore pool here
        ssl_context=httpx.create_ssl_context(), network_backend=_GuardedBackend(guard),
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0,
    )
    return transport
