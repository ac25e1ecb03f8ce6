"""The API's routes, one router per resource: ``health``, ``uploads``, ``videos``, ``effects``,
``media``, ``users``, ``admin`` (every ``/v1/admin/*`` route, behind the admin key)."""
