"""The processes: the HTTP protocol on the socket, the listening socket, worker processes, the supervisor and their
signals."""
