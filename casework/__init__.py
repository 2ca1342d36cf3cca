"""The application shell: the ``casework`` CLI and the demo. Wires the layers together."""

from __future__ import annotations

__all__: list[str] = []
