"""Dataset uploads, the API's to receive: the archive checks (``archive``), the conversion
to arrays (``ingest``) and the writing of a checked dataset into the store (``writer``). The
store's layout, which the worker reads too, stays in the core (``ganserve.data.uploads``)."""
