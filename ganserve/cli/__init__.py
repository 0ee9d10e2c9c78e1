"""The ``ganserve`` command line: the top layer. It parses arguments and calls the packages
below it (training, evaluation, service, the ganserve core); nothing imports it."""
