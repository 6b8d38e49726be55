"""The local dashboard: ``trainrun ui``, a Starlette app served by uvicorn.

>>> from trainrun.web import create_app, serve    # doctest: +SKIP
>>> serve("runs", port=8700)                      # doctest: +SKIP
"""

from __future__ import annotations

from trainrun.web.app import create_app
from trainrun.web.server import serve

__all__ = ["create_app", "serve"]
