"""One module per target, each behind the same few verbs: create-or-adopt, wait, query, delete."""
