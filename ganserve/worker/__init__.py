"""Jobs, the worker half: the Celery tasks that fine-tune and evaluate, on torch.

``ganserve worker`` runs them. The torch-free half (records, specs, the queue's settings) is
``ganserve.jobs``, which the API uses to submit and read jobs without importing this package.
"""
