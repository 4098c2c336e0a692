"""The team and its secrets: the sealed vault (``vault``), members and their keys (``members``,
``invites``), personas, contributed credentials, and the Claude subscription (``claude_token``, connected
through a worker by ``logins``)."""
