"""Delivery: getting a notice to a person. Records, sending, rendering, the mailer, and what
SendGrid reports back (its events, the suppression list, the rep's address alert)."""
