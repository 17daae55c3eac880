"""The centre's HTTP service (issue 14): the verified identity on the clerk's screen, the fleet for operators.

Modules: ``app`` (the routes table and :func:`~.app.build_app`), ``auth`` (bearer tokens, failed-
attempt limit), ``clients`` (the clients file: names, roles, token hashes), ``sse`` (server-sent
events), ``views`` (stored event -> JSON line, device -> fleet object), ``pages`` (the clerk's and
the fleet page: Jinja2 templates and plain JavaScript in ``templates/`` and ``static/``),
``server`` (``central serve``: uvicorn, optional in-process listener). Importing this package
loads no box module.
"""
