"""Charts drawn on the server as SVG: no script, no external library, readable without colour."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from routing.report.queries import Day

WIDTH, HEIGHT, PAD = 600, 200, 30


def _frame(title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + PAD + 10}" '
        f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
        f"{body}</svg>"
    )


def met_share_per_day(days: Sequence[Day]) -> str:
    """One bar per day: the share of judged reports that kept the promise (100% = full height)."""
    step = (WIDTH - PAD) / max(1, len(days))
    parts = [
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" class="axis"/>',
        '<text x="0" y="12" class="label">100%</text>',
        f'<text x="0" y="{HEIGHT}" class="label">0%</text>',
    ]
    for i, day in enumerate(days):
        x = PAD + i * step
        label = f"{day.day.isoformat()}: {day.met} met, {day.missed} missed"
        if day.share is None:
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - 2}" width="{step * 0.8:.1f}" '
                f'height="2" class="empty"><title>{escape(label)}</title></rect>'
            )
            continue
        height = day.share * (HEIGHT - 10)
        css = "bar" if day.share >= 0.95 else "bar low"
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - height:.1f}" width="{step * 0.8:.1f}" '
            f'height="{height:.1f}" class="{css}"><title>{escape(label)}</title></rect>'
        )
    if days:
        parts.append(
            f'<text x="{PAD}" y="{HEIGHT + 20}" class="label">{days[0].day.isoformat()}</text>'
        )
        parts.append(
            f'<text x="{WIDTH - 80}" y="{HEIGHT + 20}" class="label">'
            f"{days[-1].day.isoformat()}</text>"
        )
    return _frame("Share of reports that kept the promise, per day", "".join(parts))


def time_to_ack(counts: Sequence[int], *, bucket_seconds: int, promise_seconds: int) -> str:
    """A histogram of time to acknowledgement, with the promise drawn as a line."""
    top = max(counts, default=0) or 1
    step = (WIDTH - PAD) / max(1, len(counts))
    parts = [f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" class="axis"/>']
    for i, count in enumerate(counts):
        height = count / top * (HEIGHT - 10)
        low = i * bucket_seconds // 60
        label = f"{low}+ min: {count}" if i == len(counts) - 1 else f"{low}-{low + 1} min: {count}"
        parts.append(
            f'<rect x="{PAD + i * step:.1f}" y="{HEIGHT - height:.1f}" width="{step * 0.85:.1f}" '
            f'height="{height:.1f}" class="bar"><title>{escape(label)}</title></rect>'
        )
        parts.append(f'<text x="{PAD + i * step:.1f}" y="{HEIGHT + 15}" class="label">{low}</text>')
    line_x = PAD + promise_seconds / bucket_seconds * step
    parts.append(
        f'<line x1="{line_x:.1f}" y1="0" x2="{line_x:.1f}" y2="{HEIGHT}" class="promise"/>'
    )
    parts.append(f'<text x="{line_x + 4:.1f}" y="12" class="label">promise</text>')
    parts.append(f'<text x="{WIDTH - 60}" y="{HEIGHT + 30}" class="label">minutes</text>')
    return _frame("Time to acknowledgement (minutes), with the promise", "".join(parts))
