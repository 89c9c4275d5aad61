"""The HTTP edge: the server, the endpoints, and each API's rendering of domain refusals."""
