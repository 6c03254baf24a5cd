"""Personal data as lists show it: enough to recognise, not enough to copy (m***@example.com).

Detail views show the full value; lists, the audit log and search results use these.
"""

from __future__ import annotations


def mask_email(email: str) -> str:
    """`maya@example.com` -> `m***@example.com`; anything without an @ is hidden whole."""
    local, at, domain = email.partition("@")
    if not at:
        return "***" if email else ""
    return f"{local[:1]}***@{domain}"


def mask_recipient(recipient: str) -> str:
    """A record's recipient identity: `contractor:<id>` stays (an id), `rep:<email>` masked."""
    kind, _, who = recipient.partition(":")
    return f"{kind}:{mask_email(who)}" if kind == "rep" and "@" in who else recipient


def mask_name(first: str, last: str) -> str:
    """`Maya`, `Thompson` -> `Maya T.`: the first name and the last name's initial."""
    return " ".join(
        part for part in (first.strip(), f"{last.strip()[:1]}." if last.strip() else "") if part
    )
