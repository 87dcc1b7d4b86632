"""What the WSGI and ASGI adapters both read from a Hive request."""


def header_pairs(headers):
    """`(name, value)` text pairs of the request's headers (values that
    are not UTF-8 are read as latin-1, as servers do)."""
    pairs = []
    for name, value in headers:
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                value = bytes(value).decode("latin-1")
        pairs.append((name.lower(), value))
    return pairs


def host_and_port(headers):
    """The server name and port the client addressed, from `Host`."""
    for name, value in header_pairs(headers):
        if name == "host":
            host, _, port = value.rpartition(":")
            if host and port.isdigit():
                return host, port
            return value, "80"
    return "localhost", "80"
