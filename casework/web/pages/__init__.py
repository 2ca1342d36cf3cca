"""The pages, one module per area; each holds a ``router`` that :mod:`casework.web.app` includes."""
