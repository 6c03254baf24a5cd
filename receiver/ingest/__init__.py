"""Receiving: signature schemes, event envelopes, the request body, the atomic inbox."""
