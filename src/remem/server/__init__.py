"""remem over HTTP: the REST application (``create_app``) and ``remem serve``."""
