"""Hand-written SVG of a soak run: broker RSS beside the bytes its memory gauges account
for (and RSS minus those), open descriptors and p99 latencies over time, one panel each (no plotting library, so nothing to install or download).

    .venv/bin/python scripts/soak_plot.py target/soak/<run>/soak.json [out.svg]
"""

import json
import sys
from pathlib import Path

WIDTH = 760
PANEL_HEIGHT = 170
MARGIN_LEFT = 70
MARGIN_RIGHT = 20
MARGIN_TOP = 36
PANEL_GAP = 48
TICKS = 4
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

# (title, [(row key, legend)]) per panel
PANELS = [
    ("broker memory (MB)", [("rss_mb", "RSS"), ("accounted_mb", "accounted (gauges)"),
                            ("unaccounted_mb", "RSS - accounted"), ("cache_mb", "batch cache")]),
    ("open descriptors / Kafka connections", [("fds", "fds"), ("connections", "connections")]),
    ("p99 latency (ms)", [("produce_all_p99_ms", "produce acks=all"), ("produce_1_p99_ms", "produce acks=1"),
                          ("consume_p99_ms", "produce-to-consume")]),
]


def _nice_max(v):
    if v <= 0:
        return 1
    step = 10 ** (len(str(int(v))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * step:
            return m * step
    return 10 * step


def _esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(rows, title):
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    height = MARGIN_TOP + len(PANELS) * (PANEL_HEIGHT + PANEL_GAP)
    t_max = max((r["t_s"] for r in rows), default=1) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>']
    for i, (name, series) in enumerate(PANELS):
        top = MARGIN_TOP + i * (PANEL_HEIGHT + PANEL_GAP) + 14
        values = [r.get(k) for r in rows for k, _ in series if r.get(k) is not None]
        y_max = _nice_max(max(values, default=1))
        out.append(f'<text x="{MARGIN_LEFT}" y="{top - 6}" font-size="12">{_esc(name)}</text>')
        out.append(f'<rect x="{MARGIN_LEFT}" y="{top}" width="{plot_w}" height="{PANEL_HEIGHT}" '
                   f'fill="none" stroke="#888"/>')
        for t in range(TICKS + 1):
            y = top + PANEL_HEIGHT - t * PANEL_HEIGHT / TICKS
            label = y_max * t / TICKS
            out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                       f'stroke="#eee"/>')
            out.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label:g}</text>')
        for t in range(TICKS + 1):
            x = MARGIN_LEFT + t * plot_w / TICKS
            out.append(f'<text x="{x:.1f}" y="{top + PANEL_HEIGHT + 14}" text-anchor="middle">'
                       f'{t_max * t / TICKS / 60:.0f} min</text>')
        for j, (key, legend) in enumerate(series):
            pts = [(MARGIN_LEFT + r["t_s"] / t_max * plot_w, top + PANEL_HEIGHT - r[key] / y_max * PANEL_HEIGHT)
                   for r in rows if r.get(key) is not None]
            colour = COLOURS[j % len(COLOURS)]
            if pts:
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="'
                           + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + '"/>')
            lx = MARGIN_LEFT + 8 + j * 160
            out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{top + 12}" y2="{top + 12}" stroke="{colour}" '
                       f'stroke-width="2"/>')
            out.append(f'<text x="{lx + 22}" y="{top + 16}">{_esc(legend)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(rows, path, title="corelog soak"):
    Path(path).write_text(svg(rows, title))


if __name__ == "__main__":
    summary = json.loads(Path(sys.argv[1]).read_text())
    target = sys.argv[2] if len(sys.argv) > 2 else str(Path(sys.argv[1]).with_suffix(".svg"))
    write_svg(summary["rows"], target, f"corelog soak, {summary['minutes']:g} min, --smp {summary['smp']}")
    print(target)
