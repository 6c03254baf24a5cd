"""Notices: which emails an event causes (rules), and the facts they are decided from."""
