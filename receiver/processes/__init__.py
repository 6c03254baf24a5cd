"""The service's two processes, as the Procfile runs them: `receiver-web` (gunicorn serving
`create_app()`, settings in gunicorn_settings.py) and `receiver-worker` (RQ workers under a
supervisor, worker.py). Both are console scripts of the installed wheel, so they run from any
folder; the repository's top-level `worker.py` is a thin entry to the same function."""
