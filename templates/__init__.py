"""The templates, shipped inside the wheel as the package `receiver.templates` (pyproject.toml
maps this folder there): `emails/` (one .html/.txt pair per notice), `console/` and `coverage/`
(the operator's console and the contractor's coverage page). Found through the import system
(receiver/resources.py), never by a path beside the source tree."""
