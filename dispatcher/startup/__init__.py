"""Before serving: binding the port, reaching every dependency (``preflight``), ``dispatcher check`` (``checks``), exit codes (``errors``)."""
