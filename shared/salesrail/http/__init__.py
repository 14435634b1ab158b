"""HTTP plumbing: the app factory every service uses, problem+json errors, request context."""
