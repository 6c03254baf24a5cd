"""Redis: connections, Lua script runners, the embedded server, and every key name."""
