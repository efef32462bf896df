"""How a record is named in the rejects report, whatever tap it came from.

A target knows the fields that identify a record of the stream it expects (``list_id``/``id`` for
Mailchimp members); a record from another source (a CSV tap through a stream map) may lack them. It is
then named by the key properties of its SCHEMA message, else by its position in the stream in this run,
so a reject can always be traced back to its input record (never ``"None/None"``).

E-mail addresses are never written to the rejects report: a key value that looks like one is replaced
by its Mailchimp subscriber hash (md5 of the lower-cased address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from oromc_common.mailchimp import subscriber_hash


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _safe(value: Any) -> str:
    text = str(value).strip()
    if "@" in text:
        return f"md5:{subscriber_hash(text)}"
    return text


def record_key(
    record: Mapping[str, Any],
    fields: Iterable[str],
    *,
    key_properties: Iterable[str] = (),
    position: int | None = None,
) -> str:
    """The name of ``record`` in rejects and actions.

    * ``fields`` all present: their values joined by ``/`` (the target's own form, e.g. ``list/hash``);
    * else the stream's ``key_properties`` that are present, as ``name=value`` joined by ``/``;
    * else ``#<position>``: the record's 1-based position in its stream in this run (``#?`` unknown).
    """
    wanted = list(fields)
    if wanted and all(_present(record.get(f)) for f in wanted):
        return "/".join(_safe(record[f]) for f in wanted)
    named = [f"{k}={_safe(record[k])}" for k in key_properties if _present(record.get(k))]
    if named:
        return "/".join(named)
    return f"#{position}" if position is not None else "#?"
