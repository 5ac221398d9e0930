"""Block the network in every Python process of the test suite (TL_OFFLINE=1).

tests/conftest.py puts this folder on PYTHONPATH, so Python loads this file at start-up in
pytest itself and in every process it starts: notebook kernels, the book build. Loopback
stays open (Jupyter kernels talk to their client over it); anything else fails at once
with a message that says which address was attempted.
"""

import os

if os.environ.get("TL_OFFLINE") == "1":
    import socket

    _LOCAL = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")
    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def _local(host) -> bool:
        host = host.decode() if isinstance(host, bytes) else str(host)
        return host in _LOCAL or host.startswith("127.")

    def _guard(sock, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            raise OSError(f"network access is blocked in the offline test suite (tried {address[0]}:{address[1]})")

    def connect(self, address):
        _guard(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        _guard(self, address)
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _local(host):
            raise socket.gaierror(f"network access is blocked in the offline test suite (looked up {host})")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
