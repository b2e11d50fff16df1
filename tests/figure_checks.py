"""What a reviewer checks on a figure, as code: text that overprints other text, text cut off
at the canvas edge, text too small to read in print, a figure wider than the page."""
from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PAGE_WIDTH_IN = 6.69  # the report's text width (A4, 2 cm margins)
MIN_FONT_PT = 7.0
TOLERANCE_PX = 1.0


def drawn_texts(fig: Figure) -> list[tuple[str, object, float]]:
    """(text, window extent, font size) of every text the renderer actually draws (layout applied)."""
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    drawn = []
    original = renderer.draw_text

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn.append(mtext)
        return original(gc, x, y, s, prop, angle, ismath, mtext)

    renderer.draw_text = record
    fig.draw(renderer)
    return [(t.get_text(), t.get_window_extent(renderer), t.get_fontsize()) for t in drawn]


def problems(fig: Figure) -> list[str]:
    """Every overlap, cut-off text, small font and excess width, as readable lines (empty: fine)."""
    found = []
    width, height = fig.get_figwidth(), fig.get_figheight()
    if width > PAGE_WIDTH_IN:
        found.append(f"figure is {width:.2f} in wide, the page {PAGE_WIDTH_IN} in")
    texts = drawn_texts(fig)
    canvas_w, canvas_h = width * fig.dpi, height * fig.dpi
    for text, box, size in texts:
        if size < MIN_FONT_PT:
            found.append(f"{text!r} is {size:g} pt (< {MIN_FONT_PT:g})")
        if box.x0 < -TOLERANCE_PX or box.y0 < -TOLERANCE_PX or box.x1 > canvas_w + TOLERANCE_PX or box.y1 > canvas_h + TOLERANCE_PX:
            found.append(f"{text!r} leaves the canvas: {box.bounds} of {canvas_w:.0f} x {canvas_h:.0f} px")
    for i, (a, box_a, _) in enumerate(texts):
        for b, box_b, _ in texts[i + 1:]:
            dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if dx > TOLERANCE_PX and dy > TOLERANCE_PX:
                found.append(f"{a!r} overlaps {b!r}")
    return found
