"""Services: the rules of the help desk. Callers pass a Session; services never commit."""
