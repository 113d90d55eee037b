"""Database plumbing: the restricted-role backend and owner-mode switching."""
