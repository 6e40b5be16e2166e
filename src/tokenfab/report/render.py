"""The one way tokenfab builds an HTML page: Jinja2 templates in ``report/templates`` on a shared base.

The design report, the simulation-run report and the sweep report all render through `render_page`, so
they share one style sheet, header, navigation and figure block. This module imports nothing of tokenfab,
so any layer that writes a report can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def render_page(template: str, **context) -> str:
    """Render ``templates/<template>`` (which extends base.html.j2) with `context`."""
    return environment().get_template(template).render(**context)


@dataclass
class PageFigure:
    """A figure as the shared figure block shows it: an image source, a caption and download links."""

    slug: str
    title: str
    caption: str
    src: str
    links: list[tuple[str, str]] = field(default_factory=list)
    css_class: str = "chart"


def file_figure(path: str | Path, title: str, caption: str) -> PageFigure:
    """A figure saved beside the page (linked by its file name, so the folder can move as a whole)."""
    name = Path(path).name
    return PageFigure(slug=Path(name).stem, title=title, caption=caption, src=name, links=[("PNG", name)])


@dataclass
class PageTable:
    """A table of already formatted cells; `numeric` columns are right-aligned."""

    columns: list[str]
    rows: list[list[str]]
    numeric: set[str] = field(default_factory=set)
