"""handgrad playground: train a network in the browser and see the derivation underneath.

``handgrad playground`` serves a static page (``static/``) and trains handgrad's
own MLP in Python behind a WebSocket. Modules, each one concept:

- :mod:`.data`: the data sets and input features;
- :mod:`.protocol`: validation of every message from the page;
- :mod:`.session`: one page's data, network, optimizer and frames;
- :mod:`.derive`: a parameter's gradient as an evaluated chain of Jacobians;
- :mod:`.walkthrough`: one batch through SGD's five steps;
- :mod:`.server`: the Starlette app and the uvicorn runner (needs the
  ``playground`` extra: ``pip install 'handgrad[playground]'``).
"""

from __future__ import annotations

EXTRA_HINT = "handgrad playground needs the 'playground' extra: pip install 'handgrad[playground]'"
