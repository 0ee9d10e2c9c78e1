"""The web playground's assets (HTML, one JavaScript module, CSS), served by the API at ``/``
and ``/playground/``: no build step, no CDN; the page uses the public REST API only."""
