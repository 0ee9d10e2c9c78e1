"""Jobs, the torch-free half: settings, records, the request specs and the queue.

The API (no torch) and the workers (torch) share these. A job's row in the database is the
source of truth for its state, progress, result and error; the broker only carries "run job
<id>" messages, so a lost or duplicated message can never lose or double a job (the row's
lease decides who runs it).
"""
