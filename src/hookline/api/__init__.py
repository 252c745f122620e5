"""The HTTP API: app factory, one router per resource, auth, problem+json."""
