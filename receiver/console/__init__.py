"""The operator's console: who may use it, what they did, and what they can look at and do."""
