"""The bundled pipelines, written with glue-replay's public API only: examples to copy.

* :mod:`glue_replay_examples.customers` — customers from a paged JSON REST API (the bundled
  sample API in the demo and the tests).

Each is registered as a ``glue_replay.pipelines`` entry point (see ``setup.py``) and has its
own Glue job scripts in ``glue_jobs/``. The library's core never imports this package.
"""
