"""``catdog-zoo serve``: finished runs as a local web page and a TF Serving-compatible JSON API.

Requests are decoded on every core, batched together on the run's fast engine (a small wait bound, as TF
Serving's batcher does), and bounded everywhere (body, pixels, images per request, queue): see docs/serve.md.
"""
