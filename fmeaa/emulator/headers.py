"""Request headers the emulator reads as a real server would: the file name of an upload's
Content-Disposition (RFC 6266, with RFC 5987 `filename*`)."""

from __future__ import annotations

import re
import urllib.parse

_DISPOSITION_PARAM = re.compile(
    r""";\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)""")


def disposition_filename(disposition: str | None) -> str | None:
    """The file name of a Content-Disposition header, read as RFC 6266 asks: `filename*`
    (RFC 5987: charset'language'percent-encoded) wins over `filename`, a quoted string whose
    backslash escapes are undone and which is NOT percent-decoded."""
    if not disposition:
        return None
    params: dict[str, str] = {}
    for key, value in _DISPOSITION_PARAM.findall(disposition):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(key.lower(), value)
    extended = params.get("filename*")
    if extended and extended.count("'") >= 2:
        charset, _, rest = extended.partition("'")
        encoded = rest.partition("'")[2]
        try:
            return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            raise ValueError("Content-Disposition filename* is not valid") from None
    return params.get("filename")
