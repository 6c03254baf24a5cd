"""Coverage: per-contractor documents built from events, their store, push and page links."""
