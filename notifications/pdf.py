"""Print-ready PDF of a notice: its own HTML, laid out by WeasyPrint.

The HTML rendered from the supervisor's template is the notice (its SHA-256
is in the audit trail). The PDF is that same HTML laid out by a real HTML/CSS
renderer (WeasyPrint: the template's ``<style>`` with its ``@page`` rules,
page counters, repeated table headers, any element), not a second template
and not a subset of the tags: what is hashed is what is printed.

Templates are untrusted, so the renderer fetches nothing: every URL a notice
names (``<img src>``, ``<link href>``, ``@import``, ``@font-face`` ``url()``,
``data:`` included) is refused by :class:`NoFetching`, and the refusal is
logged. A notice is text and borders; the seal area is drawn with CSS, never
fetched.

Chinese text needs a CJK font installed for fontconfig (Debian:
``fonts-wqy-microhei``; ``scripts/system-packages`` installs it). Without one
the PDF would show empty boxes, so :func:`html_to_pdf` refuses with
:data:`Code.PDF_UNAVAILABLE`, naming the package, as it does when Pango is
missing.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from engine.errors import CaseworkError, Code

if TYPE_CHECKING:
    from weasyprint.urls import URLFetcher

__all__ = ["CJK_FONT_PACKAGE", "PdfUnavailable", "cjk_fonts", "html_to_pdf", "no_fetching"]

logger = logging.getLogger(__name__)

#: the Debian package of the font the bundled templates name first
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
_PANGO_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0"


class PdfUnavailable(CaseworkError):
    """A notice cannot be printed to PDF on this machine (no CJK font, no Pango); nothing was changed."""

    default_code = Code.PDF_UNAVAILABLE


def _fontconfig_env() -> tuple[str | None, ...]:
    # what decides which fonts fontconfig (and so Pango) sees: the answer is cached per setting
    return tuple(os.environ.get(k) for k in ("FONTCONFIG_FILE", "FONTCONFIG_PATH", "FONTCONFIG_SYSROOT", "HOME"))


def cjk_fonts() -> list[str]:
    """The font families fontconfig offers for Chinese (``fc-list :lang=zh``), sorted.

    Raises:
        PdfUnavailable: ``fc-list`` (Debian ``fontconfig``) is not installed.
    """
    settings = _fontconfig_env()
    if settings not in _found:
        families = _list_cjk_fonts()
        if not families:
            return []  # not remembered: a font installed later is found without a restart
        _found[settings] = families
    return list(_found[settings])


_found: dict[tuple[str | None, ...], tuple[str, ...]] = {}


def _list_cjk_fonts() -> tuple[str, ...]:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise PdfUnavailable(
            "cannot print the notice as PDF: fontconfig's fc-list is not installed, so no font for Chinese can "
            f"be found; install the Debian packages fontconfig and {CJK_FONT_PACKAGE}",
            missing="fontconfig",
            install=f"fontconfig {CJK_FONT_PACKAGE}",
        )
    proc = subprocess.run(
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=60, check=False
    )  # fmt: skip
    families = {line.split(",")[0].strip() for line in proc.stdout.splitlines() if line.strip()}
    return tuple(sorted(families))


def _require_cjk_font() -> None:
    if not cjk_fonts():
        raise PdfUnavailable(
            "cannot print the notice as PDF: no font for Chinese is installed (fontconfig lists none for "
            f"':lang=zh') and the PDF would show empty boxes; install a CJK font: the Debian package "
            f"{CJK_FONT_PACKAGE}",
            missing="CJK font",
            install=CJK_FONT_PACKAGE,
        )


@functools.cache
def _fetcher_class() -> type[URLFetcher]:
    from weasyprint.urls import URLFetcher

    class NoFetching(URLFetcher):  # type: ignore[misc]
        """Refuses every URL: a notice's template may not read files or reach the network."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            logger.warning("notice PDF: refused to fetch %.200s (a notice fetches nothing)", url)
            raise ValueError(f"a notice fetches nothing; refused {url[:200]!r}")

    return NoFetching


def no_fetching() -> URLFetcher:
    """A WeasyPrint URL fetcher that refuses every URL (``file:``, ``http(s):``, ``data:`` …)."""
    return _fetcher_class()(timeout=1, allowed_protocols=(), allow_redirects=False)


def _weasyprint() -> Any:
    try:
        import weasyprint
    except OSError as exc:  # Pango (a C library) is missing: WeasyPrint cannot load it
        raise PdfUnavailable(
            f"cannot print the notice as PDF: WeasyPrint cannot load Pango ({exc}); install the Debian packages "
            f"{_PANGO_PACKAGES}",
            missing="pango",
            install=_PANGO_PACKAGES,
        ) from None
    return weasyprint


def html_to_pdf(html: str, title: str = "") -> bytes:
    """Print a notice's HTML (exactly the stored, hashed text) as a PDF and return its bytes.

    The page size, margins, page numbers and fonts are the template's own CSS
    (``@page``). ``title`` becomes the PDF's title when the HTML has no
    ``<title>``.

    Raises:
        PdfUnavailable: no CJK font is installed, or Pango is missing.
    """
    weasyprint = _weasyprint()
    _require_cjk_font()
    document = weasyprint.HTML(string=html, url_fetcher=no_fetching()).render()
    if title and not document.metadata.title:
        document.metadata.title = title
    pdf: bytes = document.write_pdf()
    return pdf
