"""A minimal RFC 5545 calendar file: one all-day event on a grant's end date."""

from datetime import date, datetime, timedelta


def _escape(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Fold at 75 octets without splitting a UTF-8 character."""
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line
    pieces: list[str] = []
    current = b""
    for char in line:
        raw = char.encode("utf-8")
        if len(current) + len(raw) > (75 if not pieces else 74):
            pieces.append(current.decode("utf-8"))
            current = b""
        current += raw
    pieces.append(current.decode("utf-8"))
    return "\r\n ".join(pieces)


def all_day_event(
    *, uid: str, day: date, summary: str, description: str, stamp: datetime,
    alarm_days_before: int | None = 7,
) -> str:
    """A VCALENDAR holding one all-day VEVENT on `day`, with an optional display alarm."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Aarhus Kommune//bevilling//DA",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp.strftime('%Y%m%dT%H%M%SZ')}",
        f"DTSTART;VALUE=DATE:{day.strftime('%Y%m%d')}",
        f"DTEND;VALUE=DATE:{(day + timedelta(days=1)).strftime('%Y%m%d')}",
        f"SUMMARY:{_escape(summary)}",
        f"DESCRIPTION:{_escape(description)}",
        "TRANSP:TRANSPARENT",
    ]
    if alarm_days_before:
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{_escape(summary)}",
                  f"TRIGGER:-P{alarm_days_before}D", "END:VALARM"]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
